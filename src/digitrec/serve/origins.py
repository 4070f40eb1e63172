"""Where requests may come from: cross-origin requests are refused (403) unless `--allow-origin` names the origin,
and a server on a loopback address answers only requests addressed to a loopback name (400; `--allow-host`).

A browser sends `Origin` with every cross-origin request (and with same-origin POSTs). Without this check any web
page a visitor opens could drive the service from the visitor's browser: a form POST needs no CORS permission
to be *sent*, only to be read. Same-origin use (the bundled page) and clients that send no Origin (curl, SDKs)
are served as usual; an allowed origin also gets the CORS headers that let its page read the answers.
"""
from __future__ import annotations

import ipaddress

from .asgi import ApiError, header

PREFLIGHT_HEADERS = [(b"access-control-allow-methods", b"GET, POST"),
                     (b"access-control-allow-headers", b"content-type"), (b"access-control-max-age", b"600")]


class OriginPolicy:
    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = {o.encode() for o in allowed}

    def check(self, scope) -> list[tuple[bytes, bytes]]:
        """The CORS headers to add to the answer ([] for same-origin or no Origin); ApiError 403 when refused."""
        origin = header(scope, b"origin")
        if origin is None:
            return []
        origin = origin.lower()
        host = header(scope, b"host") or b""
        if origin == scope.get("scheme", "http").encode() + b"://" + host.lower():
            return []
        if origin in self.allowed:
            return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        shown = origin.decode("latin-1")[:100]
        raise ApiError(403, f"cross-origin request from {shown!r} refused (the server allows: "
                            f"{', '.join(sorted(o.decode() for o in self.allowed)) or 'same origin only'})")

    @staticmethod
    def is_preflight(scope) -> bool:
        return scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method") is not None


class HostPolicy:
    """DNS rebinding: a page on evil.example whose name is then pointed at 127.0.0.1 is, in the visitor's browser,
    same-origin with a service on the visitor's machine — its Origin and the Host it sends both say evil.example —
    so the Origin check cannot tell. What gives it away is the Host: a server listening on a loopback address
    (the default) is reached by loopback names only, so it answers only requests addressed to localhost, 127.x.x.x
    or [::1], and to the names `--allow-host` adds. A server listening on other addresses is reached by names it
    cannot know: it answers any Host unless `--allow-host` names them. (Requests without Host — HTTP/1.0 tools —
    are served: browsers always send it.)"""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = {h.encode() for h in allowed}

    def check(self, scope) -> None:
        value = header(scope, b"host")
        if value is None:
            return
        name = host_name(value)
        if name in self.allowed or is_loopback_name(name):
            return
        if not self.allowed and not is_loopback_name((scope.get("server") or ("",))[0].encode()):
            return  # listening beyond loopback with no list: any name may reach it
        shown = value.decode("latin-1")[:100]
        names = ", ".join(sorted(h.decode() for h in self.allowed))
        raise ApiError(400, f"this server does not answer requests for host {shown!r} (it answers localhost, "
                            f"127.0.0.1, [::1]{', ' + names if names else ''}; add names with --allow-host)")


def host_name(value: bytes) -> bytes:
    """The name in a Host header, lower-case, without port or trailing dot: b"[::1]:80" → b"[::1]"."""
    value = value.strip().lower()
    if value.startswith(b"["):
        end = value.find(b"]")
        return value[:end + 1] if end > 0 else value
    return value.rsplit(b":", 1)[0].rstrip(b".") if value.count(b":") == 1 else value.rstrip(b".")


def is_loopback_name(name: bytes) -> bool:
    if name in (b"localhost", b"localhost.localdomain") or name.endswith(b".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip(b"[]").decode("ascii")).is_loopback
    except (ValueError, UnicodeDecodeError):
        return False
