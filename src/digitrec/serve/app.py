"""The HTTP service: `create_app(model_path, **limits)` → an ASGI app.

/v1/predict (one digit), /v1/read (a number) and /healthz are answered here in plain ASGI; everything else
(the web page, /static, /docs, /openapi.json, unknown paths) goes to the FastAPI app of pages.py.
Only the inference path is imported (preprocess, reader, a predictor) — never training code.
Every refused request is a JSON `{"error": "..."}` with a 4xx status (503 when busy); the server keeps serving.
"""
from __future__ import annotations

import logging
import os

from .asgi import ApiError, send_empty, send_error, send_json
from .limits import ServeLimits
from .origins import PREFLIGHT_HEADERS, HostPolicy, OriginPolicy
from .pages import pages_app
from .service import ClientGone, Service

log = logging.getLogger("digitrec.serve")


class DigitrecApp:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.origins = OriginPolicy(service.limits.allow_origins)
        self.hosts = HostPolicy(service.limits.allow_hosts)
        self.pages = pages_app()
        self.api = {"/v1/predict": service.predict, "/v1/read": service.read}

    @property
    def limits(self) -> ServeLimits:
        return self.service.limits

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        if scope["type"] != "http":
            return await self.pages(scope, receive, send)
        try:
            self.hosts.check(scope)
            cors = self.origins.check(scope)
        except ApiError as e:
            return await send_error(send, e)
        if cors and OriginPolicy.is_preflight(scope):
            return await send_empty(send, 204, cors + PREFLIGHT_HEADERS)
        path, method = scope["path"], scope["method"]
        if path == "/healthz" and method in ("GET", "HEAD"):
            return await send_json(send, 200, self.service.health(), cors)
        handler = self.api.get(path)
        if handler is None:
            return await self.pages(scope, receive, with_headers(send, cors) if cors else send)
        if method != "POST":
            return await send_error(send, ApiError(405, f"{path} takes POST, not {method}", [(b"allow", b"POST")]))
        await self.answer(handler, scope, receive, send, cors)

    async def answer(self, handler, scope, receive, send, cors) -> None:
        try:
            payload = await self.service.handle(handler, scope, receive)
        except ApiError as e:
            e.headers = e.headers + cors
            return await send_error(send, e)
        except ClientGone:  # nobody left to answer
            return
        except Exception as e:  # a bug, not the user's fault: still JSON, and the server lives on
            log.exception("error while answering %s", scope["path"])
            return await send_error(send, ApiError(500, f"internal server error ({type(e).__name__})", cors))
        await send_json(send, 200, payload, cors)

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.service.start()
                except Exception as e:
                    return await send({"type": "lifespan.startup.failed", "message": str(e)})
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.service.stop()
                return await send({"type": "lifespan.shutdown.complete"})


def with_headers(send, extra: list[tuple[bytes, bytes]]):
    async def sender(message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sender


def create_app(model_path: str | os.PathLike, limits: ServeLimits | None = None, **overrides) -> DigitrecApp:
    """The app for one model file (.pt checkpoint or .onnx). Keyword arguments override `ServeLimits` fields;
    a bad model file or limit fails here, before any server listens."""
    if overrides:
        limits = ServeLimits(**{**(limits.__dict__ if limits else {}), **overrides})
    return DigitrecApp(Service(model_path, limits or ServeLimits()))
