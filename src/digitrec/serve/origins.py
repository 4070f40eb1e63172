"""Cross-origin requests: refused (403) unless `--allow-origin` names the origin.

A browser sends `Origin` with every cross-origin request (and with same-origin POSTs). Without this check any web
page a visitor opens could drive the service from the visitor's browser: a form POST needs no CORS permission
to be *sent*, only to be read. Same-origin use (the bundled page) and clients that send no Origin (curl, SDKs)
are served as usual; an allowed origin also gets the CORS headers that let its page read the answers.
"""
from __future__ import annotations

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
