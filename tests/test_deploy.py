"""Serving beyond this machine (`make serve`): TLS, the Host allow-list, security headers, refusal
to render inside a foreign site's frame, and the settings that keep plain HTTP off the network."""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipelines.present.security import host_allowed, host_name
from pipelines.serve import ServeError, deploy_options, upload_cap_flags
from pipelines.store.warehouse import REPO_DIR

CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost/127.0.0.1, made for the test (openssl ships with Debian)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def _context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.fixture(scope="module")
def tls_server(built_db, tmp_path_factory):
    """`python -m pipelines.serve --deploy` on 127.0.0.1 over TLS, hosts localhost only."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(directory)
    port = _free_port()
    env = dict(os.environ, CEPING_DB=str(built_db), CEPING_DRAWS="2000")
    log = (directory / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.serve", "--deploy", "--address", "127.0.0.1", "--port",
         str(port), "--cert", str(cert), "--key", str(key), "--hosts", "localhost"],
        cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"https://localhost:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2, context=_context(cert))
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("the TLS server did not start within 60 s")
    yield url, port, cert
    process.terminate()
    process.wait(timeout=20)


def test_tls_server_answers_on_https_with_the_security_headers(tls_server):
    url, _, cert = tls_server
    with urllib.request.urlopen(f"{url}/", timeout=10, context=_context(cert)) as response:
        headers = response.headers
        assert response.status == 200
    assert "frame-ancestors 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    # XSRF protection is on: the health check hands out the token cookie, Secure under TLS
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10, context=_context(cert)) as r:
        cookie = r.headers["Set-Cookie"] or ""
    assert "_streamlit_xsrf=" in cookie and "Secure" in cookie


def test_plain_http_is_not_served_on_the_tls_port(tls_server):
    _, port, _ = tls_server
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()


def test_a_request_for_a_foreign_host_is_refused(tls_server):
    _, port, cert = tls_server
    context = _context(cert)
    context.check_hostname = False
    request = urllib.request.Request(f"https://127.0.0.1:{port}/", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10, context=context)
    assert refused.value.code == 421


def test_a_websocket_for_a_foreign_host_is_refused(tls_server):
    """DNS rebinding reaches the data over the WebSocket: its handshake is checked too."""
    _, port, cert = tls_server
    context = _context(cert)
    context.check_hostname = False
    answers = {}
    for host in ("localhost", "evil.example"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall((f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                         f"Origin: https://{host}:{port}\r\n"
                         "Sec-WebSocket-Protocol: streamlit\r\n\r\n").encode())
            answers[host] = tls.recv(200).decode("latin-1").split("\r\n", 1)[0]
    assert " 101 " in answers["localhost"]
    assert " 403 " in answers["evil.example"]


def test_host_allow_list_rules():
    assert host_name("Dashboard.Example.ORG:8443") == "dashboard.example.org"
    assert host_name("[::1]:8443") == "[::1]"
    assert host_allowed("a.jdb.local:443", ["*.jdb.local"])
    assert not host_allowed("jdb.local.evil.example", ["*.jdb.local", "jdb.local"])
    assert not host_allowed("", ["jdb.local"])
    assert host_allowed("anything", [])


def test_plain_http_beyond_this_machine_is_refused():
    with pytest.raises(ServeError, match="TLS"):
        deploy_options(["--address", "0.0.0.0", "--port", "8443"])
    with pytest.raises(ServeError, match="同时"):
        deploy_options(["--address", "127.0.0.1", "--cert", "c.pem"])


def test_deploy_flags_turn_on_the_protections(tmp_path, monkeypatch):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    monkeypatch.setenv("CEPING_MAX_FILE_MB", "64")
    flags, env = deploy_options(["--address", "10.1.2.3", "--cert", str(cert), "--key", str(key),
                                 "--hosts", "jdb.local,10.1.2.3"])
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs["--server.enableXsrfProtection"] == "true"
    assert pairs["--server.enableCORS"] == "true"
    assert pairs["--server.sslCertFile"] == str(cert)
    assert flags.count("--server.allowedHosts") == 2
    assert env["CEPING_ALLOWED_HOSTS"] == "jdb.local,10.1.2.3" and env["CEPING_TLS"] == "1"
    assert env["CEPING_PUBLIC_READ"] == "0"
    assert upload_cap_flags()[:2] == ["--server.maxUploadSize", "64"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_a_page_refuses_to_render_in_a_foreign_iframe(tls_server, tmp_path):
    """A foreign site frames the dashboard (clickjacking 发布/恢复): the browser shows nothing."""
    from playwright.sync_api import sync_playwright

    url, _, _ = tls_server
    (tmp_path / "evil.html").write_text(f'<html><body><iframe id="f" src="{url}/" width="800" '
                                        'height="600"></iframe></body></html>')
    handler = lambda *a, **k: _Quiet(*a, directory=str(tmp_path), **k)  # noqa: E731
    foreign = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                        args=["--no-sandbox", "--disable-gpu",
                                              "--ignore-certificate-errors"])
            page = browser.new_page()
            page.goto(url)          # framed by itself: the dashboard loads
            page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
            page.goto(f"http://127.0.0.1:{foreign.server_address[1]}/evil.html")
            page.wait_for_timeout(3000)
            frame = page.frame_locator("#f")
            assert frame.locator('[data-testid="stApp"]').count() == 0
            framed = [f for f in page.frames if f != page.main_frame]
            assert all(f.url.startswith(url) is False or f.content().count("stApp") == 0
                       for f in framed)
            browser.close()
    finally:
        foreign.shutdown()


def _offline(command: str) -> list[str]:
    """`command` in a network namespace of its own: loopback only, no registry reachable."""
    return ["unshare", "-n", "bash", "-c", f"ip link set lo up || exit 1; {command}"]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
                    reason="needs root and unshare to block the network")
def test_the_bundle_installs_and_runs_with_the_network_blocked(tmp_path):
    """make bundle (with registry access), then make install-offline and make run inside
    `unshare -n`: pip, uv and apt have nothing to reach, so any download would fail."""
    bundle = tmp_path / "bundle.tar.gz"
    made = subprocess.run(["make", "bundle", f"BUNDLE={bundle}"], cwd=REPO_DIR, capture_output=True,
                          text=True, timeout=1200)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    subprocess.run(["tar", "-xzf", str(bundle), "-C", str(tmp_path)], check=True)
    root = tmp_path / "cepingkanban"
    assert not (root / "warehouse.duckdb").exists() and not (root / ".venv").exists()
    env = {"PATH": f"/usr/sbin:/usr/bin:/sbin:/bin:{Path(sys.executable).parent}",
           "HOME": str(tmp_path / "home"), "UV_CACHE_DIR": str(tmp_path / "empty-uv-cache"),
           "PIP_NO_INDEX": "1", "LANG": "C.UTF-8"}          # no uv on PATH, an empty uv cache
    installed = subprocess.run(_offline("make install-offline"), cwd=root, env=env,
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "离线安装完成" in installed.stdout
    health = ("python3 -c 'import urllib.request as u; "
              "u.urlopen(\"http://127.0.0.1:8501/_stcore/health\", timeout=3)'")
    run = subprocess.run(_offline(
        "setsid make run > run.log 2>&1 < /dev/null & pid=$!; ok=1; for i in $(seq 1 150); do sleep 1; "
        f"if {health} 2>/dev/null; then ok=0; break; fi; done; kill -- -$pid; sleep 2; exit $ok"),
        cwd=root, env=env, capture_output=True, text=True, timeout=300)
    log = (root / "run.log").read_text() if (root / "run.log").exists() else ""
    assert run.returncode == 0, log[-3000:]
    assert (root / "warehouse.duckdb").exists()          # built from the bundled sample


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_a_named_user_signs_in_over_tls_and_out_again(db_copy, tmp_path):
    """The real thing: sign-in required, a named analyst signs in over https (the token bound to
    this browser's XSRF cookie), sees 数据管理, signs out and is back at the sign-in page."""
    from playwright.sync_api import sync_playwright

    from pipelines.store.accounts import Accounts, users_path

    Accounts(users_path(db_copy)).add("李分析", "测试-口令-2026", "analyst", by="测试")
    cert, key = self_signed(tmp_path)
    port = _free_port()
    env = dict(os.environ, CEPING_DB=str(db_copy), CEPING_DRAWS="2000", CEPING_REQUIRE_SIGN_IN="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.serve", "--deploy", "--address", "127.0.0.1", "--port",
         str(port), "--cert", str(cert), "--key", str(key), "--hosts", "localhost"],
        cwd=REPO_DIR, env=env, stdout=(tmp_path / "server.log").open("w"), stderr=subprocess.STDOUT)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                        args=["--no-sandbox", "--disable-gpu",
                                              "--ignore-certificate-errors"])
            page = browser.new_page(locale="zh-CN")
            deadline = time.monotonic() + 60
            while True:
                try:
                    page.goto(f"https://localhost:{port}/")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            page.get_by_text("请先登录").wait_for(timeout=90_000)
            page.get_by_label("用户名").fill("李分析")
            page.get_by_label("密码").fill("测试-口令-2026")
            page.get_by_role("button", name="登录").click()
            page.get_by_text("已登录：李分析（分析人员）").wait_for(timeout=90_000)
            assert page.get_by_text("数据管理").count() > 0
            page.get_by_role("button", name="退出登录").click()
            page.get_by_text("请先登录").wait_for(timeout=60_000)
            browser.close()
        import sqlite3

        with sqlite3.connect(users_path(db_copy)) as con:
            sessions = con.execute("select client, ended_at from sessions").fetchall()
        assert len(sessions) == 1 and len(sessions[0][0]) == 32      # bound to the XSRF cookie
        assert sessions[0][1] is not None                             # ended by the sign-out
    finally:
        process.terminate()
        process.wait(timeout=20)
