"""Who may use the dashboard: the holder of its token, from its own origin.

As Jupyter does, `pasd web` prints a URL carrying a random token; the first visit trades it for an
HttpOnly, SameSite=Strict cookie and a redirect to the same page without it. Every request needs
the token (403 otherwise); every state-changing request is a POST from the dashboard's own origin
carrying the CSRF token the page was given.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Guard:
    """The token, the CSRF token derived from it, and the hosts the server answers as."""

    port: int = 0
    host: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def csrf(self) -> str:
        return hmac.new(self.token.encode(), b"pasd-web csrf", hashlib.sha256).hexdigest()

    @property
    def cookie(self) -> str:
        # cookies ignore the port: one name per port, so two dashboards do not log each other out
        return f"pasd_web_{self.port}"

    def host_ok(self, request: web.Request) -> bool:
        """On loopback, only loopback names (a rebound DNS name carries its own Host header)."""
        if self.host not in LOOPBACK:
            return True
        name = request.url.host or ""
        return name in LOOPBACK

    def origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is not None and origin == f"{request.scheme}://{request.host}"

    def has_token(self, request: web.Request) -> bool:
        given = request.cookies.get(self.cookie) or request.query.get("token") or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.host_ok(request):
            return refuse("unknown host name")
        if not self.has_token(request):
            return refuse("open the URL printed by `pasd web` (it carries the token)")
        if "token" in request.query and request.method == "GET" and request.path == "/":
            # trade the token in the URL for a cookie, and drop it from the address bar and history
            rest = {k: v for k, v in request.rel_url.query.items() if k != "token"}
            response = web.HTTPFound(request.rel_url.with_query(rest))
            self.set_cookie(response)
            return response
        if request.method not in SAFE_METHODS:
            if request.method != "POST":
                return refuse("only GET and POST are served")
            if not self.origin_ok(request):
                return refuse("cross-origin request refused")
            if not hmac.compare_digest(request.headers.get("X-CSRF-Token", "").encode(), self.csrf.encode()):
                return refuse("missing or wrong CSRF token")
        return await handler(request)

    def set_cookie(self, response: web.StreamResponse) -> None:
        response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict", path="/")


def refuse(why: str) -> web.Response:
    return web.Response(status=403, text=f"403 Forbidden: {why}\n", headers={"Cache-Control": "no-store"})
