"""What a request carries, checked: the image of a multipart upload, or a 28×28 array sent as JSON.

Every refusal is an ApiError with a 4xx status and a one-line message.
"""
from __future__ import annotations

import json

import numpy as np
from python_multipart.multipart import MultipartParser, parse_options_header

from .asgi import ApiError

MAX_PARTS = 16  # form fields per upload; only 'file' is read


class _Parts:
    """python-multipart callbacks: each part's Content-Disposition, Content-Type and bytes."""

    def __init__(self) -> None:
        self.parts: list[dict] = []
        self._field = b""

    def callbacks(self) -> dict:
        return {"on_part_begin": self.begin, "on_header_field": self.field, "on_header_value": self.value,
                "on_part_data": self.data}

    def begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise ApiError(400, f"the upload has more than {MAX_PARTS} form fields")
        self.parts.append({"headers": {}, "data": []})

    def field(self, data: bytes, start: int, end: int) -> None:
        self._field = data[start:end].lower()

    def value(self, data: bytes, start: int, end: int) -> None:
        headers = self.parts[-1]["headers"]
        headers[self._field] = headers.get(self._field, b"") + data[start:end]

    def data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1]["data"].append(data[start:end])


def upload_image(body: bytes, content_type: bytes) -> bytes:
    """The bytes of the multipart field `file`, which must be the only file and declare an image/* type."""
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart/form-data upload without a boundary parameter")
    collected = _Parts()
    try:
        parser = MultipartParser(boundary, collected.callbacks())
        parser.write(body)
        parser.finalize()
    except ValueError as e:  # python-multipart's MultipartParseError and friends
        raise ApiError(400, f"malformed multipart body ({str(e).splitlines()[0][:100]})") from None
    files = [p for p in collected.parts
             if parse_options_header(p["headers"].get(b"content-disposition", b""))[1].get(b"name") == b"file"]
    if not files:
        raise ApiError(400, "multipart field 'file' is missing (it must hold the image file)")
    if len(files) > 1:
        raise ApiError(400, f"send one image per request: the upload holds {len(files)} files named 'file'")
    kind = parse_options_header(files[0]["headers"].get(b"content-type", b""))[0].decode("latin-1").lower()
    if not kind.startswith("image/"):
        raise ApiError(415, f"field 'file' has content type {kind or 'none'!r}; expected image/*")
    data = b"".join(files[0]["data"])
    if not data:
        raise ApiError(400, "the uploaded file is empty")
    return data


def json_body(raw: bytes):
    """Parsed JSON; malformed, too deep or absurd numbers (Python refuses > 4300-digit integers) → 400."""
    if not raw:
        raise ApiError(400, "the request body is empty")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ApiError(400, "invalid JSON (nested too deeply)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"invalid JSON ({str(e).splitlines()[0][:100]})") from None
    except ValueError:  # Python's limit on integer digits (4300)
        raise ApiError(400, "invalid JSON (a number with thousands of digits)") from None


def _shape(x) -> str:
    dims = []
    while isinstance(x, list):
        dims.append(len(x))
        x = x[0] if x else None
    return "×".join(map(str, dims)) if dims else type(x).__name__


def array_image(body) -> np.ndarray:
    """JSON `{"image": 28×28 numbers}` (0–1 or 0–255, MNIST polarity: light ink on black) → float32 28×28 in 0–1."""
    if not isinstance(body, dict) or "image" not in body:
        raise ApiError(422, 'JSON body must be an object {"image": [[...28 numbers], ... 28 rows]}')
    rows = body["image"]
    shape = _shape(rows)
    if shape != "28×28" or not all(isinstance(r, list) and len(r) == 28 for r in rows):
        raise ApiError(422, f"image must be a 28×28 array, got {shape if shape != '28×28' else 'ragged rows'}")
    if not all(type(v) in (int, float) for r in rows for v in r):
        raise ApiError(422, "image must contain only numbers")
    try:
        a = np.asarray(rows, dtype=np.float64)
    except OverflowError:  # an integer beyond float range, e.g. 10**400
        raise ApiError(422, "pixel values must lie in 0–1 or 0–255, got a number beyond float range") from None
    if not np.isfinite(a).all():
        raise ApiError(422, "image contains NaN or infinite values")
    if a.min() < 0 or a.max() > 255:
        raise ApiError(422, f"pixel values must lie in 0–1 or 0–255, got {a.min():g} to {a.max():g}")
    return (a / 255.0 if a.max() > 1 else a).astype(np.float32)
