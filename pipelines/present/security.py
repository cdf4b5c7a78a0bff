"""HTTP hardening for a dashboard reached over a network: a Host allow-list (DNS rebinding) and
security headers on every response (anti-framing, so 发布 and 恢复 cannot be clickjacked; no
sniffing; HSTS under TLS). A plain ASGI middleware, so it wraps Streamlit's HTTP routes and its
WebSocket alike (Streamlit's own `server.allowedHosts` checks the WebSocket only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy",
     "frame-ancestors 'self'; base-uri 'self'; form-action 'self'; object-src 'none'"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ("cross-origin-opener-policy", "same-origin"),
)
HSTS = ("strict-transport-security", "max-age=31536000")
MISDIRECTED = 421


def host_name(value: str) -> str:
    """The host of a Host header, lower-case, without its port (IPv6 literals keep brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(value: str, allowed: Iterable[str]) -> bool:
    """Whether a Host header names one of `allowed` (`*.example.org` matches its subdomains;
    an empty allow-list or `*` accepts any host)."""
    patterns = [a.strip().lower() for a in allowed if a.strip()]
    if not patterns or "*" in patterns:
        return True
    host = host_name(value)
    if not host:
        return False
    return any(host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in patterns)


class SecurityHeaders:
    """Refuse requests for unknown hosts (HTTP 421, WebSocket 403) and add the headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = (), tls: bool = False) -> None:
        self.app = app
        self.allowed = tuple(allowed_hosts)
        self.headers = [(k.encode(), v.encode()) for k, v in (*HEADERS, *((HSTS,) if tls else ()))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.allowed):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await self._refuse(send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in self.headers if k not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _refuse(self, send: Send) -> None:
        body = "未知的主机名：请使用管理员提供的网址访问。".encode()
        await send({"type": "http.response.start", "status": MISDIRECTED,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), *self.headers]})
        await send({"type": "http.response.body", "body": body})
