"""Start the dashboard: `python -m pipelines.serve [streamlit options]` (what `make run` does).

The app defines its pages with st.navigation and keeps them in pages/. Streamlit also knows an
older convention where a pages/ folder is itself the navigation; it decides per server from the
folder's existence until the first st.navigation call, so a bookmark opened on a freshly started
server would run the page without app.py (no sidebar, no sign-in check). Declaring the newer mode
before the server starts closes that gap.

While the server starts and the first browser loads the page, a thread imports what the first
page view needs (the app's modules with Altair, SciPy, Polars, DuckDB: about 1 s), which would
otherwise begin only when that visitor's script runs.
"""

from __future__ import annotations

import importlib
import sys
import threading

from pipelines.core.allocator import keep_freed_memory
from pipelines.store.warehouse import REPO_DIR

# the module the app's script imports first: a script that starts while this is being imported
# waits for it holding no other import lock, so the two threads cannot deadlock
FIRST_IMPORT = "pages._shared"


def _preload() -> None:
    try:
        importlib.import_module(FIRST_IMPORT)
    except Exception:  # the script imports it again and reports the error on the page
        pass


def main(argv: list[str] | None = None) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    keep_freed_memory()
    PagesManager.uses_pages_directory = False
    if str(REPO_DIR) not in sys.path:
        sys.path.insert(0, str(REPO_DIR))
    threading.Thread(target=_preload, name="preload", daemon=True).start()
    sys.argv = ["streamlit", "run", str(REPO_DIR / "app.py"), *(argv if argv is not None
                                                               else sys.argv[1:])]
    cli.main()


if __name__ == "__main__":
    main()
