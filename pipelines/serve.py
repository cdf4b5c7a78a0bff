"""Start the dashboard: `python -m pipelines.serve [streamlit options]` (what `make run` does).

The app defines its pages with st.navigation and keeps them in pages/. Streamlit also knows an
older convention where a pages/ folder is itself the navigation; it decides per server from the
folder's existence until the first st.navigation call, so a bookmark opened on a freshly started
server would run the page without app.py (no sidebar, no sign-in check). Declaring the newer mode
before the server starts closes that gap.
"""

from __future__ import annotations

import sys

from pipelines.warehouse import REPO_DIR


def main(argv: list[str] | None = None) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(REPO_DIR / "app.py"), *(argv if argv is not None
                                                               else sys.argv[1:])]
    cli.main()


if __name__ == "__main__":
    main()
