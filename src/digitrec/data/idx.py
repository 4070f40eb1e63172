"""The IDX file format of MNIST/EMNIST (LeCun's format), read and written with validation.

Layout: 2 zero bytes, a type byte (0x08 = uint8), a byte with the number of dimensions,
then each dimension as a big-endian uint32, then the data. Files may be gzip-compressed.
Every failure raises DigitrecError with the file name and what is wrong.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DigitrecError
from ..fileio import atomic_path

_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DigitrecError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DigitrecError(f"{path}: is a directory, expected an IDX file") from None
    except OSError as e:
        raise DigitrecError(f"{path}: cannot read ({e.strerror})") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise DigitrecError(f"{path}: corrupt or truncated gzip data ({e})") from None
    return raw


def read_idx(path: str | os.PathLike, expect_ndim: int | None = None) -> np.ndarray:
    """Read a uint8 IDX file (raw or .gz) into a numpy array of the stored shape."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DigitrecError(f"{path}: truncated IDX file ({len(raw)} bytes, no header)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or ndim == 0:
        raise DigitrecError(f"{path}: bad magic number 0x{raw[:4].hex()} (not an IDX file)")
    if dtype != _UINT8:
        raise DigitrecError(f"{path}: IDX data type 0x{dtype:02x} is not supported (only uint8, 0x08)")
    if expect_ndim is not None and ndim != expect_ndim:
        kind = {1: "labels", 3: "images"}.get(expect_ndim, f"{expect_ndim}-d data")
        raise DigitrecError(f"{path}: has {ndim} dimension(s), expected {expect_ndim} ({kind})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DigitrecError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    got = len(raw) - header
    if got < expected:
        raise DigitrecError(f"{path}: truncated: header promises {expected} bytes of data for shape {shape}, file has {got}")
    if got > expected:
        raise DigitrecError(f"{path}: {got - expected} unexpected trailing bytes after data of shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


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
