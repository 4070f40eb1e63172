"""The HTTP service: FastAPI app with /v1/predict (one digit), /v1/read (a number), /healthz and the web page.

Only the inference path is imported here (predict, preprocess, reader) — never training code.
Every bad input becomes a JSON `{"error": "..."}` with a 4xx status; the server keeps serving.
"""
from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import warnings
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import DigitrecError
from ..predict import load_predictor
from ..preprocess import load_digit
from ..reader import read_image
from .batcher import MicroBatcher

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 10 * 1024 * 1024  # whole request body
    max_pixels: int = 40_000_000  # width × height, checked from the header before decoding
    timeout_s: float = 30.0  # per request: body upload (408) and processing (503)
    max_batch: int = 64  # images per forward pass
    batch_wait_ms: float = 3.0  # how long the first request of a batch waits for company


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse bodies over `max_bytes` — by Content-Length up front, and while streaming
    (chunked uploads have no length), so an oversized upload is never read into memory."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = f"request body is larger than the {self.max_bytes:,}-byte limit"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await error(400, "invalid Content-Length header")(scope, receive, send)
            if int(length) > self.max_bytes:
                return await error(413, too_big)(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, too_big)
            return message

        await self.app(scope, limited_receive, send)


class BatchedPredictor:
    """A predictor whose forward passes go through the micro-batcher (used by the synchronous reader in a thread)."""

    def __init__(self, batcher: MicroBatcher) -> None:
        self.batcher = batcher

    def predict_proba(self, images) -> np.ndarray:
        return self.batcher.predict_from_thread(np.asarray(images, dtype=np.float32))


def png_base64(image: np.ndarray) -> str:
    """A 28×28 float 0–1 image as a base64 PNG (what the model saw)."""
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.asarray(image) * 255 + 0.5, 0, 255).astype(np.uint8), "L").save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def check_pixels(data: bytes, max_pixels: int) -> None:
    """Read only the header: refuse decompression bombs (tiny file, huge dimensions) before any decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except Image.DecompressionBombError as e:
        raise ApiError(413, f"image has too many pixels ({str(e).split('(')[0].strip()[:100]})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApiError(422, "upload is not a readable image (PNG, JPEG, BMP, GIF, TIFF, WebP ...)") from None
    if width * height > max_pixels:
        raise ApiError(413, f"image is {width}x{height} pixels, more than the {max_pixels:,} allowed")


def list_shape(x) -> str:
    dims = []
    while isinstance(x, list):
        dims.append(len(x))
        x = x[0] if x else None
    return "×".join(map(str, dims)) if dims else type(x).__name__


def parse_array(body) -> np.ndarray:
    """JSON `{"image": 28×28 numbers}` (0–1 or 0–255, MNIST polarity: light ink on black) → float32 28×28 in 0–1."""
    if not isinstance(body, dict) or "image" not in body:
        raise ApiError(422, 'JSON body must be an object {"image": [[...28 numbers], ... 28 rows]}')
    rows = body["image"]
    shape = list_shape(rows)
    if shape != "28×28" or not all(isinstance(r, list) and len(r) == 28 for r in rows):
        raise ApiError(422, f"image must be a 28×28 array, got {shape if shape != '28×28' else 'ragged rows'}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for r in rows for v in r):
        raise ApiError(422, "image must contain only numbers")
    a = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ApiError(422, "image contains NaN or infinite values")
    if a.min() < 0 or a.max() > 255:
        raise ApiError(422, f"pixel values must lie in 0–1 or 0–255, got {a.min():g} to {a.max():g}")
    if a.max() > 1:
        a = a / 255.0
    return a.astype(np.float32)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_upload(request: Request) -> bytes:
    """The bytes of the multipart field `file`, which must declare an image/* content type."""
    if media_type(request) != "multipart/form-data":
        raise ApiError(415, "expected a multipart/form-data upload with the image in field 'file'")
    form = await request.form(max_files=1, max_fields=16)
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(400, "multipart field 'file' is missing (it must hold the image file)")
        if not (upload.content_type or "").lower().startswith("image/"):
            raise ApiError(415, f"field 'file' has content type {upload.content_type or 'none'!r}; expected image/*")
        data = await upload.read()
    finally:
        await form.close()  # spooled temporary files
    if not data:
        raise ApiError(400, "the uploaded file is empty")
    return data


UPLOAD_SCHEMA = {"type": "object", "required": ["file"],
                 "properties": {"file": {"type": "string", "format": "binary", "description": "an image (image/*)"}}}
ARRAY_SCHEMA = {"type": "object", "required": ["image"], "properties": {"image": {
    "type": "array", "minItems": 28, "maxItems": 28, "description": "28×28, 0–1 or 0–255, light ink on black",
    "items": {"type": "array", "minItems": 28, "maxItems": 28, "items": {"type": "number"}}}}}


class Prediction(BaseModel):
    digit: int
    confidence: float
    probabilities: list[float]
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


ERRORS = {code: {"model": Error} for code in (400, 408, 413, 415, 422, 503)}


def create_app(model_path: str | os.PathLike, **limits) -> FastAPI:
    """The app for one model file (.pt checkpoint or .onnx). Keyword arguments override `Limits` fields."""
    limits = Limits(**limits)
    predictor = load_predictor(model_path)  # a bad model file fails here, before the server listens
    batcher = MicroBatcher(predictor.predict_proba, limits.max_batch, limits.batch_wait_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="digitrec", version=__version__, lifespan=lifespan,
                  description="Handwritten digit recognition: one digit (`/v1/predict`) or a whole number "
                              "(`/v1/read`) from a photo, a scan or a drawing. Errors are `{\"error\": \"...\"}`.")
    app.state.limits, app.state.batcher, app.state.predictor = limits, batcher, predictor
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return error(e.status, e.message)

    @app.exception_handler(DigitrecError)
    async def _digitrec_error(request, e: DigitrecError):
        return error(422, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e: StarletteHTTPException):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def _bug(request, e: Exception):  # a bug, not the user's fault: still JSON, and the server lives on
        return error(500, f"internal server error ({type(e).__name__})")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")

    async def guarded(work, request: Request):
        """Run `work(request, phase)` under the request timeout: still uploading → 408, still computing → 503."""
        phase = ["reading"]
        try:
            return await asyncio.wait_for(work(request, phase), limits.timeout_s)
        except asyncio.TimeoutError:
            if phase[0] == "reading":
                raise ApiError(408, f"the request body did not arrive within {limits.timeout_s:g} s") from None
            raise ApiError(503, f"the request was not processed within {limits.timeout_s:g} s (server busy)") from None

    async def _predict(request: Request, phase: list) -> dict:
        kind = media_type(request)
        if kind == "application/json":
            raw = await request.body()
            phase[0] = "processing"
            if not raw:
                raise ApiError(400, "the request body is empty")
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ApiError(400, f"invalid JSON ({e})") from None
            image = parse_array(body)
        elif kind == "multipart/form-data":
            data = await read_upload(request)
            phase[0] = "processing"
            check_pixels(data, limits.max_pixels)
            image = await asyncio.to_thread(load_digit, data, "upload")
        else:
            raise ApiError(415, "send the image as multipart/form-data (field 'file') or as application/json "
                                '{"image": 28×28 array}' + (f", not {kind}" if kind else ""))
        probs = (await batcher.predict(image[None]))[0]
        digit = int(np.argmax(probs))
        return {"digit": digit, "confidence": round(float(probs[digit]), 6),
                "probabilities": [round(float(p), 6) for p in probs], "crop": png_base64(image)}

    @app.post("/v1/predict", response_model=Prediction, responses=ERRORS, summary="Recognise one digit",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "multipart/form-data": {"schema": UPLOAD_SCHEMA}, "application/json": {"schema": ARRAY_SCHEMA}}}})
    async def predict(request: Request):
        """One digit: an image upload (any size; preprocessed to MNIST form) or a 28×28 array already in MNIST form."""
        return await guarded(_predict, request)

    @app.post("/v1/read", response_model=Reading, responses=ERRORS, summary="Read a number (one or more digits)",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "multipart/form-data": {"schema": UPLOAD_SCHEMA}}}})
    async def read(request: Request, min_confidence: float = Query(0.0, ge=0.0, le=1.0,
                                                                    description="mark digits below this as doubtful")):
        """A photo, scan or drawing of a number: segmented into digits, each read by the model."""

        async def work(request: Request, phase: list) -> dict:
            data = await read_upload(request)
            phase[0] = "processing"
            check_pixels(data, limits.max_pixels)
            result = await asyncio.to_thread(read_image, BatchedPredictor(batcher), data, min_confidence, "upload")
            return {"text": str(result["text"]),
                    "digits": [{"digit": int(d["digit"]), "confidence": round(float(d["confidence"]), 6),
                                "box": [int(v) for v in d["box"]], "doubtful": bool(d["doubtful"])}
                               for d in result["digits"]],
                    "crops": [png_base64(c) for c in result["crops"]]}

        return await guarded(work, request)

    @app.get("/healthz", summary="Liveness and model info")
    async def healthz():
        return {"status": "ok", "version": __version__, "model": Path(model_path).name,
                "batches": batcher.batches, "images": batcher.images,
                "limits": asdict(limits)}

    @app.get("/", include_in_schema=False)
    async def index():
        # The page loads nothing from other origins; say so to the browser too.
        return FileResponse(STATIC / "index.html", headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'",
            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
