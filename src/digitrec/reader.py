"""Read the number in an image: preprocess.segment → a predictor → digits, confidences and boxes.

    import digitrec
    digitrec.Reader().read("photo.jpg")
    # {"file": "photo.jpg", "text": "4096", "digits": [{"digit": 4, "confidence": 0.99, "box": [x, y, w, h],
    #   "doubtful": False}, ...]}                       (the same object `digitrec read --json` prints per line)

    from digitrec.predict import load_predictor
    from digitrec.reader import read_image, default_model_path
    result = read_image(load_predictor(default_model_path()), "photo.jpg", min_confidence=0.5)
    result["text"]    # "4096" ("?" for a digit below min_confidence; "" when the image holds no digit)
    result["crops"]   # float32 N×28×28, what the model saw (not JSON: records leave it out)

Boxes are in the original image's pixels, after its EXIF orientation is applied (as browsers show it).
The predictor is anything with `predict_proba(N×1×28×28 float32) → N×10` (a checkpoint or an .onnx model).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DigitrecError
from .imagefile import MAX_PIXELS
from .preprocess import DigitCrop, segment

BUNDLED_DIR = Path(__file__).parent / "models" / "bundled"
DIGIT_FIELDS = ("digit", "confidence", "box", "doubtful")


def default_model_path() -> Path:
    """The bundled reader model (presets/robust.toml: the `fast` network trained on MNIST and handwriting fonts)."""
    path = BUNDLED_DIR / "robust.pt"
    if not path.is_file():
        raise DigitrecError(f"the bundled model {path} is missing (reinstall digitrec, or name a model file)")
    return path


def reader_model_path() -> Path:
    """The bundled model as the reader runs it: its ONNX copy when ONNX Runtime is installed (a 28×28 crop in
    ~0.3 ms on one core, against ~1.8 ms for PyTorch's per-call overhead), else the checkpoint itself."""
    onnx = BUNDLED_DIR / "robust.onnx"
    if onnx.is_file():
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            pass
        else:
            return onnx
    return default_model_path()


def read_image(predictor: Any, source: str | os.PathLike | bytes | Any, min_confidence: float = 0.0,
               name: str | None = None, max_pixels: int = MAX_PIXELS) -> dict[str, Any]:
    """The digits of one image (path, bytes or PIL image), left to right, with confidences and boxes."""
    if not 0.0 <= min_confidence <= 1.0:
        raise DigitrecError(f"min_confidence must be in [0, 1], got {min_confidence}")
    return read_crops(predictor, segment(source, name, max_pixels=max_pixels), min_confidence)


def read_crops(predictor: Any, crops: list[DigitCrop], min_confidence: float = 0.0) -> dict[str, Any]:
    """read_image after segmentation (benchmarks segment once and compare several predictors)."""
    images = np.stack([c.image for c in crops]).astype(np.float32) if crops else np.zeros((0, 28, 28), np.float32)
    digits = []
    if crops:
        probs = np.asarray(predictor.predict_proba(images[:, None]))
        for crop, p in zip(crops, probs):
            d = int(p.argmax())
            conf = float(p[d])
            digits.append({"digit": d, "confidence": round(conf, 6), "box": [int(v) for v in crop.box],
                           "doubtful": conf < min_confidence})
    text = "".join("?" if d["doubtful"] else str(d["digit"]) for d in digits)
    return {"text": text, "digits": digits, "crops": images}


def record(file: str | None, result: dict[str, Any]) -> dict[str, Any]:
    """The JSON object of one read image: file, text ("" when no digit was found) and digits."""
    return {"file": file, "text": result["text"],
            "digits": [{k: d[k] for k in DIGIT_FIELDS} for d in result["digits"]]}


class Reader:
    """Reads the number in images, one call each: `Reader().read("photo.jpg")` → the dict `digitrec read --json`
    prints for that file.

    model: a checkpoint (.pt), an exported .onnx model, or None for the bundled one (reader_model_path). threads: CPU threads for the
    model (None: the library's default). min_confidence: digits below it read as "?". max_pixels: larger images
    are refused.
    """

    def __init__(self, model: str | os.PathLike | None = None, threads: int | None = None,
                 min_confidence: float = 0.0, max_pixels: int = MAX_PIXELS) -> None:
        from .predict import load_predictor

        if not 0.0 <= min_confidence <= 1.0:
            raise DigitrecError(f"min_confidence must be in [0, 1], got {min_confidence}")
        path = Path(model) if model is not None else reader_model_path()
        if not path.exists():
            raise DigitrecError(f"{path}: model not found")
        self.predictor = load_predictor(path, threads=threads)
        self.min_confidence, self.max_pixels = min_confidence, max_pixels

    def read(self, source: str | os.PathLike | bytes | Any, name: str | None = None) -> dict[str, Any]:
        """The number in one image: a path, bytes or a Pillow image. Raises DigitrecError for an unreadable file."""
        file = name if name is not None else (str(source) if isinstance(source, (str, os.PathLike)) else None)
        result = read_image(self.predictor, source, self.min_confidence, name, self.max_pixels)
        return record(file, result)
