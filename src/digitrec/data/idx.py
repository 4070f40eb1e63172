"""The IDX file format of MNIST/EMNIST (LeCun's format), read and written with validation.

Layout: 2 zero bytes, a type byte (0x08 = uint8), a byte with the number of dimensions,
then each dimension as a big-endian uint32, then the data. Files may be gzip-compressed.
Every failure raises DigitrecError with the file name and what is wrong.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DigitrecError
from ..fileio import atomic_path

_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


MAX_BYTES = 2 << 30  # 2 GiB of pixels: 4× the largest EMNIST split; a header may promise anything


def _open(path: Path):
    """A binary stream of the file's content, gunzipped as it is read when the file is gzip-compressed."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DigitrecError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DigitrecError(f"{path}: is a directory, expected an IDX file") from None
    except OSError as e:
        raise DigitrecError(f"{path}: cannot read ({e.strerror})") from None
    if f.read(2) == _GZIP_MAGIC:
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb")
    f.seek(0)
    return f


def _read(stream, n: int, path: Path) -> bytes:
    """Up to n bytes (fewer only at the end of the data)."""
    try:
        return stream.read(n)
    except (EOFError, OSError, zlib.error) as e:
        raise DigitrecError(f"{path}: corrupt or truncated gzip data ({e})") from None


def read_idx(path: str | os.PathLike, expect_ndim: int | None = None) -> np.ndarray:
    """Read a uint8 IDX file (raw or .gz) into a numpy array of the stored shape.

    The header is checked before the data is read: a shape that promises more than MAX_BYTES (dims up to 2^32
    each) is refused, never allocated, and a gzip file is never inflated past what its header promises."""
    path = Path(path)
    with _open(path) as stream:
        head = _read(stream, 4, path)
        if len(head) < 4:
            raise DigitrecError(f"{path}: truncated IDX file ({len(head)} bytes, no header)")
        zero, dtype, ndim = struct.unpack(">HBB", head)
        if zero != 0 or ndim == 0:
            raise DigitrecError(f"{path}: bad magic number 0x{head.hex()} (not an IDX file)")
        if dtype != _UINT8:
            raise DigitrecError(f"{path}: IDX data type 0x{dtype:02x} is not supported (only uint8, 0x08)")
        if expect_ndim is not None and ndim != expect_ndim:
            kind = {1: "labels", 3: "images"}.get(expect_ndim, f"{expect_ndim}-d data")
            raise DigitrecError(f"{path}: has {ndim} dimension(s), expected {expect_ndim} ({kind})")
        dims = _read(stream, 4 * ndim, path)
        if len(dims) < 4 * ndim:
            raise DigitrecError(f"{path}: truncated IDX header")
        shape = struct.unpack(f">{ndim}I", dims)
        expected = math.prod(shape)  # a Python int: no overflow whatever the header says
        if expected > MAX_BYTES:
            raise DigitrecError(f"{path}: header promises shape {shape} ({expected:,} bytes), more than the "
                                f"{MAX_BYTES >> 30} GiB digitrec reads")
        data = _read(stream, expected + 1, path)
        more = _read(stream, 1 << 20, path) if len(data) > expected else b""  # how much, up to a MiB
    got = len(data) + len(more)
    if got < expected:
        raise DigitrecError(f"{path}: truncated: header promises {expected} bytes of data for shape {shape}, "
                            f"file has {got}")
    if got > expected:
        raise DigitrecError(f"{path}: {got - expected}{' or more' if len(more) == 1 << 20 else ''} unexpected "
                            f"trailing bytes after data of shape {shape}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as IDX, gzip-compressed if the name ends in .gz; atomic."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise DigitrecError(f"{path}: IDX writer takes uint8 arrays, got {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise DigitrecError(f"{path}: cannot write a {array.ndim}-d array as IDX")
    payload = struct.pack(">HBB", 0, _UINT8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def read_images_labels(images_path: Path, labels_path: Path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read an (images, labels) pair and check that they belong together."""
    images = read_idx(images_path, expect_ndim=3)
    labels = read_idx(labels_path, expect_ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DigitrecError(
            f"{images_path}: {images.shape[0]} images but {labels_path.name} has {labels.shape[0]} labels"
        )
    if images.shape[1:] != (28, 28):
        raise DigitrecError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DigitrecError(
            f"{labels_path}: label {int(labels[bad])} at index {bad} is out of range 0..{num_classes - 1}"
        )
    return images, labels
