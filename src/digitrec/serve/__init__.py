"""HTTP service and web page for reading digits: `create_app(model_path)` → FastAPI app (see app.py).

Inference path only: importing this package never imports training code (digitrec.train, digitrec.config).
"""
from .app import Limits, create_app

__all__ = ["Limits", "create_app"]
