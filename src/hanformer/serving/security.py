"""What keeps web pages out of the local server.

A page on any site can make the browser send requests to 127.0.0.1. Two doors stay shut:

* **Simple requests.** A form or `fetch` with `text/plain` needs no CORS preflight, so the browser
  sends it and the server would do the work. Every POST must say `Content-Type: application/json`,
  which a cross-site page can only send after a preflight that this server never grants (it sends
  no CORS headers).
* **DNS rebinding.** A site can point its own name at 127.0.0.1 after the page has loaded; the
  browser then treats the server as that site and lets the page read the answers. Its requests
  still carry the site's name in `Host`, so only the loopback names (with the server's port), the
  bound address and the names given in `allowed_hosts` are served; `Origin`, when a browser sends
  one, is held to the same rule.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from hanformer.serving.hosts import (
    ANY_HOST,
    LOOPBACK_NAMES,
    WILDCARD_ADDRESSES,
    HostAddress,
    parse_host,
)


class HostRules:
    """Which Host (and Origin) values this server answers to."""

    def __init__(self, bound_host: str, allowed: list[str]) -> None:
        self.any = ANY_HOST in allowed
        self.loopback = set(LOOPBACK_NAMES)
        if bound_host.lower() not in WILDCARD_ADDRESSES:
            bound = parse_host(bound_host)
            if bound is not None:
                self.loopback.add(bound.name)
        # A name the user listed is served on any port (a proxy in front may use its own).
        self.listed = [a for a in (parse_host(e) for e in allowed if e != ANY_HOST) if a is not None]

    def allows(self, address: HostAddress | None, server_port: int | None) -> bool:
        if self.any:
            return True
        if address is None:
            return False
        for entry in self.listed:
            if entry.name == address.name and entry.port in (None, address.port):
                return True
        port = 80 if address.port is None else address.port
        return address.name in self.loopback and (server_port is None or port == server_port)

    def names(self, server_port: int | None) -> str:
        port = f":{server_port}" if server_port else ""
        shown = [f"[{n}]{port}" if ":" in n else f"{n}{port}" for n in sorted(self.loopback)]
        shown += [e.name if e.port is None else f"{e.name}:{e.port}" for e in self.listed]
        return ", ".join(shown)


def is_json(content_type: str | None) -> bool:
    """`application/json`, with or without parameters such as `; charset=utf-8`."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


class RequestGuard:
    """Refuse requests for other hosts or origins (403) and POST bodies that are not JSON (415),
    before any other part of the app sees them."""

    def __init__(self, app: ASGIApp, rules: HostRules) -> None:
        self.app, self.rules = app, rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, field, message = refusal
        await JSONResponse({"error": message, "field": field}, status_code=status)(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = Headers(scope=scope)
        server = scope.get("server")
        server_port = server[1] if server else None
        host = headers.get("host", "")
        if not self.rules.allows(parse_host(host), server_port):
            return (403, "host", f"host {host!r} is not served: this server answers to "
                                 f"{self.rules.names(server_port)}; to reach it by another name, "
                                 "start it with --allowed-hosts NAME")
        origin = headers.get("origin")
        if origin is not None and not self.rules.allows(_origin_host(origin), server_port):
            return (403, "origin", f"requests from the web page at {origin!r} are not served; open the page "
                                   "this server serves, or start it with --allowed-hosts NAME for that site")
        content_type = headers.get("content-type")
        if scope["method"] == "POST" and not is_json(content_type):
            got = repr(content_type) if content_type else "none"
            return (415, "content-type", "the body must be JSON sent with the header "
                                         f"'Content-Type: application/json' (got {got})")
        return None


def _origin_host(origin: str) -> HostAddress | None:
    """The host of an Origin header (`http://name:port`); None for "null" or anything odd."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    address = parse_host(parts.netloc)
    if address is not None and address.port is None:
        return HostAddress(address.name, 443 if parts.scheme == "https" else 80)
    return address
