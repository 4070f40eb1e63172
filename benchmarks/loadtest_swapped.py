"""`digitrec serve` with the baseline's plain preprocessing swapped in — for attribution only, never shipped.

It answers "is the gap the server or the preprocessing?": the same server code, HTTP stack, batcher and model
as `digitrec serve`, with load_digit/segment replaced by loadtest_baseline's ink → crop → 20 px → centre of mass.

    python benchmarks/loadtest_swapped.py MODEL.onnx      (one process; prints the URL it serves on)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadtest_baseline as plain  # noqa: E402
from PIL import Image  # noqa: E402

import digitrec.serve.decode as decode  # noqa: E402
from digitrec.preprocess import DigitCrop  # noqa: E402


def plain_ink(upload):  # digitrec's server hands over bytes, or an image whose header it has read
    return plain.image_ink(upload) if isinstance(upload, Image.Image) else plain.ink(upload)


def plain_digit(upload, name=None, **kw):
    return plain.mnist_form(plain_ink(upload))


def plain_segment(upload, name=None, **kw):
    return [DigitCrop(image, box) for image, box in plain.components(plain_ink(upload))]


def swap() -> None:
    decode.load_digit, decode.segment = plain_digit, plain_segment


if __name__ == "__main__":
    from digitrec.serve.limits import ServeLimits
    from digitrec.serve.server import serve

    swap()
    serve(sys.argv[1], ServeLimits(), port=0, log_level="warning", announce=lambda s: print(s, flush=True))
