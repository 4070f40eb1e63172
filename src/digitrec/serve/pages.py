"""The non-API side of the service, on FastAPI: the web page at /, its static files, /docs and /openapi.json.

The API routes themselves are plain ASGI (app.py); their OpenAPI description is written here from the same
pydantic models the answers follow, so /docs documents exactly what they send.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__

STATIC = Path(__file__).parent / "static"
DESCRIPTION = ("Handwritten digit recognition: one digit (`/v1/predict`) or a whole number (`/v1/read`) from a "
               "photo, a scan or a drawing. Errors are `{\"error\": \"...\"}`; 503 answers carry `Retry-After`.")


class Prediction(BaseModel):
    digit: int | None  # null: the image holds no ink (no digit)
    confidence: float | None
    probabilities: list[float] | None
    crop: str  # base64 PNG of the 28×28 image the model saw


class ReadDigit(BaseModel):
    digit: int
    confidence: float
    box: list[int]  # x, y, w, h in the uploaded image
    doubtful: bool


class Reading(BaseModel):
    text: str
    digits: list[ReadDigit]
    crops: list[str]  # base64 PNGs, one per digit, in reading order


class Error(BaseModel):
    error: str


UPLOAD = {"type": "object", "required": ["file"],
          "properties": {"file": {"type": "string", "format": "binary", "description": "an image (image/*)"}}}
ARRAY = {"type": "object", "required": ["image"], "properties": {"image": {
    "type": "array", "minItems": 28, "maxItems": 28, "description": "28×28, 0–1 or 0–255, light ink on black",
    "items": {"type": "array", "minItems": 28, "maxItems": 28, "items": {"type": "number"}}}}}
ERROR_CODES = (400, 403, 408, 413, 415, 422, 503)


def _ref(name: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _operation(summary: str, description: str, body: dict, answer: str, parameters: list | None = None) -> dict:
    responses = {"200": {"description": "OK", **_ref(answer)}}
    responses.update({str(code): {"description": "refused", **_ref("Error")} for code in ERROR_CODES})
    return {"post": {"summary": summary, "description": description, "parameters": parameters or [],
                     "requestBody": {"required": True, "content": body}, "responses": responses}}


def api_paths() -> dict:
    min_confidence = {"name": "min_confidence", "in": "query", "required": False,
                      "description": "mark digits below this confidence as doubtful ('?')",
                      "schema": {"type": "number", "minimum": 0, "maximum": 1, "default": 0}}
    return {
        "/v1/predict": _operation(
            "Recognise one digit", "An image upload (any size; preprocessed to MNIST form) or a 28×28 array "
            "already in MNIST form. An image without ink answers `digit: null`.",
            {"multipart/form-data": {"schema": UPLOAD}, "application/json": {"schema": ARRAY}}, "Prediction"),
        "/v1/read": _operation(
            "Read a number (one or more digits)", "A photo, scan or drawing of a number: segmented into digits, "
            "each read by the model.", {"multipart/form-data": {"schema": UPLOAD}}, "Reading", [min_confidence]),
        "/healthz": {"get": {"summary": "Liveness, model, counters and limits",
                             "responses": {"200": {"description": "OK"}}}},
    }


def openapi_schema(app: FastAPI) -> dict:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema["paths"] = {**api_paths(), **schema.get("paths", {})}
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (Prediction, Reading, Error):
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(found.pop("$defs", {}))
            schemas[model.__name__] = found
        app.openapi_schema = schema
    return app.openapi_schema


def pages_app() -> FastAPI:
    app = FastAPI(title="digitrec", version=__version__, description=DESCRIPTION, redoc_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e: StarletteHTTPException):
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code, headers=e.headers)

    @app.get("/", include_in_schema=False)
    async def index():
        # The page loads nothing from other origins; say so to the browser too.
        return FileResponse(STATIC / "index.html", headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'",
            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.openapi = lambda: openapi_schema(app)
    return app
