"""The floor for `benchmarks/loadtest.py`: what anyone could write in an afternoon — Starlette + onnxruntime (one
thread), plain MNIST-style preprocessing: invert by the border, crop to the ink, 20 px, centre of mass.

    python benchmarks/loadtest_baseline.py MODEL.onnx PORT [WORKERS]
"""
import io
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image
from scipy import ndimage
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


def ink(data: bytes) -> np.ndarray:  # grey 0–1, inverted when the border is light, paper level to 0
    return image_ink(Image.open(io.BytesIO(data)))


def image_ink(img: Image.Image) -> np.ndarray:
    a = np.asarray(img.convert("L"), np.float32) / 255
    a = 1 - a if np.median(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])) > 0.5 else a
    return np.clip((a - np.median(a)) / max(1e-3, a.max() - np.median(a)), 0, 1)


def mnist_form(a: np.ndarray) -> np.ndarray:  # crop to ink, longest side 20 px, centre of mass at the middle
    ys, xs = np.nonzero(a > 0.2)
    if len(ys) == 0:
        return np.zeros((28, 28), np.float32)
    crop = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    s = 20 / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * s)), max(1, round(crop.shape[1] * s))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((w, h), Image.LANCZOS), np.float32) / 255
    cy, cx = ndimage.center_of_mass(small) if small.sum() else (h / 2, w / 2)
    top, left = min(max(int(round(14 - cy)), 0), 28 - h), min(max(int(round(14 - cx)), 0), 28 - w)
    out = np.zeros((28, 28), np.float32)
    out[top:top + h, left:left + w] = small
    return out


def digits(data: bytes) -> list:  # a number: connected components left to right, each in MNIST form, with its box
    return components(ink(data))


def components(a: np.ndarray) -> list:
    labels, _ = ndimage.label(a > 0.4)
    sizes = np.bincount(labels.ravel())[1:]
    boxes = sorted((s for s, n in zip(ndimage.find_objects(labels), sizes) if n >= 20), key=lambda s: s[1].start)
    return [(mnist_form(a[s]), (s[1].start, s[0].start, s[1].stop - s[1].start, s[0].stop - s[0].start)) for s in boxes]


opts = ort.SessionOptions()
opts.intra_op_num_threads = opts.inter_op_num_threads = 1
MODEL = sys.argv[1] if __name__ == "__main__" else os.environ.get("BASELINE_MODEL")
session = ort.InferenceSession(MODEL, opts, providers=["CPUExecutionProvider"]) if MODEL else None


async def upload(request) -> bytes:
    return await (await request.form())["file"].read()


async def predict(request):
    p = session.run(None, {"images": mnist_form(ink(await upload(request)))[None, None]})[0][0]
    return JSONResponse({"digit": int(p.argmax()), "confidence": float(p.max())})


async def read(request):
    found = digits(await upload(request))
    p = session.run(None, {"images": np.stack([d for d, _ in found])[:, None]})[0] if found else np.zeros((0, 10))
    return JSONResponse({"text": "".join(str(int(d)) for d in p.argmax(1))})


app = Starlette(routes=[Route("/v1/predict", predict, methods=["POST"]), Route("/v1/read", read, methods=["POST"])])

if __name__ == "__main__":
    import uvicorn

    os.environ["BASELINE_MODEL"] = sys.argv[1]
    # uvicorn's defaults otherwise (uvloop and httptools when installed, as digitrec serve uses them)
    uvicorn.run("loadtest_baseline:app", host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
                workers=int(sys.argv[3]) if len(sys.argv) > 3 else 1, app_dir=os.path.dirname(__file__))
