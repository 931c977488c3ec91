"""What every request to the web app must pass, and the headers every answer carries.

The app binds to loopback by default, but any web page the user visits can still send requests to
``http://127.0.0.1:PORT``. The guard therefore:

* answers only a ``Host`` it serves (the bound address, ``localhost``, ``127.0.0.1``, ``::1``),
  so a DNS-rebinding page whose own name resolves to 127.0.0.1 gets nothing;
* refuses state-changing requests (POST, PUT, PATCH, DELETE) whose ``Origin`` is another site, or
  whose ``Sec-Fetch-Site`` says cross-site;
* when the app is reachable from other computers (``--allow-remote``), wants a token: in the
  page's URL once (``/?token=…``, then kept in a same-site cookie), or in an ``X-Lensblur-Token``
  header;
* adds ``X-Content-Type-Options``, ``X-Frame-Options``, a Content-Security-Policy and
  ``Referrer-Policy`` to every response.

See docs/security.md.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_COOKIE = "lensblur_token"
TOKEN_HEADER = "x-lensblur-token"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
     b"form-action 'self'; frame-ancestors 'none'"),
]


def host_name(host_header: str) -> str:
    """The name part of a Host header ("[::1]:8000" -> "::1", "LocalHost:80" -> "localhost")."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware around the app.

    allowed_hosts: names accepted in the Host header (None accepts any: only with a token);
    token: the secret wanted on every request, or None when the app is reachable from this
    computer only.
    """

    def __init__(self, app, allowed_hosts: frozenset[str] | None, token: str | None = None):
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in names]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        refusal, cookie = self._check(scope, headers)
        if refusal is not None:
            status, text = refusal
            await _json(send_with_headers, status, text)
            return
        if cookie is None:
            await self.app(scope, receive, send_with_headers)
            return

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + [(b"set-cookie", cookie)]}
            await send_with_headers(message)

        await self.app(scope, receive, send_with_cookie)

    def _check(self, scope, headers: dict[str, str]) -> tuple[tuple[int, str] | None, bytes | None]:
        """(status, message) of a refusal or None, and a cookie to set (or None)."""
        host = headers.get("host", "")
        if self.allowed_hosts is not None and host_name(host) not in self.allowed_hosts:
            return (400, f"this app does not answer for host {host!r}: open it at http://127.0.0.1/ "
                         "(or the address it printed)"), None
        cookie = None
        if self.token is not None:
            given = _token_from(scope, headers)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                return (403, "this app needs the token it printed at start: open the URL it printed"), None
            if "token=" in scope.get("query_string", b"").decode("latin-1"):
                cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()
        if scope["method"] in _UNSAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin.rstrip("/").lower() not in _own_origins(host):
                return (403, f"refused a {scope['method']} from another site ({origin})"), None
            if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return (403, f"refused a cross-site {scope['method']}"), None
        return None, cookie


def _own_origins(host: str) -> set[str]:
    host = host.strip().lower()
    return {f"http://{host}", f"https://{host}"}


def _token_from(scope, headers: dict[str, str]) -> str | None:
    if TOKEN_HEADER in headers:
        return headers[TOKEN_HEADER]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    cookies = SimpleCookie()
    try:
        cookies.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header counts as no token
        return None
    return cookies[TOKEN_COOKIE].value if TOKEN_COOKIE in cookies else None


async def _json(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
