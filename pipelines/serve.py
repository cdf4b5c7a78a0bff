"""Start the dashboard: `python -m pipelines.serve [streamlit options]` (what `make run` does).

The app defines its pages with st.navigation and keeps them in pages/. Streamlit also knows an
older convention where a pages/ folder is itself the navigation; it decides per server from the
folder's existence until the first st.navigation call, so a bookmark opened on a freshly started
server would run the page without app.py (no sidebar, no sign-in check). Declaring the newer mode
before the server starts closes that gap.

While the server starts and the first browser loads the page, a thread imports what the first
page view needs (the app's modules with Altair, SciPy, Polars, DuckDB: about 1 s), which would
otherwise begin only when that visitor's script runs.

`--deploy` serves the network (`make serve`): asgi.py (st.App with the Host allow-list and
security headers) over TLS, XSRF and CORS protection on, sign-in to read unless public read is
asked for, and the browser upload cap equal to the ingest cap (both modes).
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
import threading
from pathlib import Path

from pipelines.core.allocator import keep_freed_memory
from pipelines.core.limits import limits
from pipelines.store.warehouse import REPO_DIR

# the module the app's script imports first: a script that starts while this is being imported
# waits for it holding no other import lock, so the two threads cannot deadlock
FIRST_IMPORT = "pages._shared"


def _preload() -> None:
    try:
        importlib.import_module(FIRST_IMPORT)
    except Exception:  # the script imports it again and reports the error on the page
        pass


LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HOSTS_ENV = "CEPING_ALLOWED_HOSTS"
TLS_ENV = "CEPING_TLS"
PUBLIC_READ_ENV = "CEPING_PUBLIC_READ"


class ServeError(SystemExit):
    """A deployment setting that would serve the network unsafely (message in Chinese)."""


def _deploy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines.serve --deploy")
    parser.add_argument("--address", default="0.0.0.0", help="监听地址")
    parser.add_argument("--port", type=int, default=8443, help="端口")
    parser.add_argument("--cert", default="", help="TLS 证书文件（PEM）")
    parser.add_argument("--key", default="", help="TLS 私钥文件（PEM）")
    parser.add_argument("--hosts", default="", help="允许的主机名，逗号分隔（默认：本机名与地址）")
    parser.add_argument("--public-read", action="store_true", help="不登录也可查看（默认须登录）")
    return parser


def default_hosts(address: str) -> list[str]:
    """The names a colleague's browser is likely to use for this machine."""
    names = {socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1"}
    if address not in ("0.0.0.0", "::", ""):
        names.add(address)
    return sorted(n for n in names if n)


def deploy_options(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Streamlit flags and environment for a network deployment; refuses plain HTTP beyond
    this machine (passwords would cross the network in clear text)."""
    args = _deploy_parser().parse_args(argv)
    if bool(args.cert) != bool(args.key):
        raise ServeError("CERT 与 KEY 须同时给出。")
    for path in (args.cert, args.key):
        if path and not Path(path).is_file():
            raise ServeError(f"找不到文件：{path}")
    if not args.cert and args.address not in LOOPBACK:
        raise ServeError("监听本机以外的地址时必须使用 TLS：请给出 CERT=证书 KEY=私钥。")
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()] or default_hosts(args.address)
    flags = ["--server.address", args.address, "--server.port", str(args.port),
             "--server.enableXsrfProtection", "true", "--server.enableCORS", "true",
             "--server.headless", "true"]
    for host in hosts:
        flags += ["--server.allowedHosts", host]
    if args.cert:
        flags += ["--server.sslCertFile", args.cert, "--server.sslKeyFile", args.key]
    env = {HOSTS_ENV: ",".join(hosts), TLS_ENV: "1" if args.cert else "0",
           PUBLIC_READ_ENV: "1" if args.public_read else os.environ.get(PUBLIC_READ_ENV, "0")}
    return flags, env


def upload_cap_flags() -> list[str]:
    """The browser's upload cap, the same as the ingest file cap (pipelines/core/limits.py)."""
    return ["--server.maxUploadSize", str(limits().file_mb),
            "--server.maxMessageSize", str(max(limits().file_mb, 200))]


def main(argv: list[str] | None = None) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    keep_freed_memory()
    PagesManager.uses_pages_directory = False
    if str(REPO_DIR) not in sys.path:
        sys.path.insert(0, str(REPO_DIR))
    argv = list(argv if argv is not None else sys.argv[1:])
    script, flags = "app.py", upload_cap_flags()
    if argv[:1] == ["--deploy"]:
        extra, env = deploy_options(argv[1:])
        os.environ.update(env)
        script, flags, argv = "asgi.py", flags + extra, []
    threading.Thread(target=_preload, name="preload", daemon=True).start()
    sys.argv = ["streamlit", "run", str(REPO_DIR / script), *flags, *argv]
    cli.main()


if __name__ == "__main__":
    main()
