"""HTTP service and web page for reading digits: `create_app(model_path, **limits)` → ASGI app (app.py),
`serve(...)` runs it under uvicorn (server.py); every limit, its default and its range: `ServeLimits` (limits.py).

Inference path only: importing this package never imports training code (digitrec.train, digitrec.config).
Names are imported on first use, so that the CLI can read ServeLimits without loading the web stack.
"""
from __future__ import annotations

__all__ = ["ServeLimits", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServeLimits":
        from .limits import ServeLimits

        return ServeLimits
    raise AttributeError(f"module 'digitrec.serve' has no attribute {name!r}")
