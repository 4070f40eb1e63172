"""IDX reader/writer: round trips and every kind of broken file gives a one-line DigitrecError naming the file."""
import gzip
import struct

import numpy as np
import pytest

from digitrec.data.idx import read_idx, read_images_labels, write_idx
from digitrec.errors import DigitrecError


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_round_trip(tmp_path, name):
    arr = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, arr)
    assert np.array_equal(read_idx(tmp_path / name), arr)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp files left


def test_reads_official_mnist_labels(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    assert np.bincount(mnist.test_labels).tolist()[:3] == [980, 1135, 1032]  # the published class counts


def _raw(tmp_path, payload: bytes, name="x-idx1-ubyte"):
    p = tmp_path / name
    p.write_bytes(payload)
    return p


def _header(ndim, *dims, dtype=0x08):
    return struct.pack(">HBB", 0, dtype, ndim) + struct.pack(f">{ndim}I", *dims)


@pytest.mark.parametrize("payload, message", [
    (b"", "truncated IDX file"),
    (b"\x00\x00", "truncated IDX file"),
    (b"PK\x03\x04" + bytes(20), "bad magic number"),
    (_header(1, 10, dtype=0x0D) + bytes(40), "data type 0x0d is not supported"),
    (_header(1, 10) + bytes(5), "truncated: header promises 10 bytes"),
    (_header(1, 10) + bytes(12), "2 unexpected trailing bytes"),
    (_header(3, 2, 28, 28)[:10], "truncated IDX header"),
])
def test_broken_files(tmp_path, payload, message):
    p = _raw(tmp_path, payload)
    with pytest.raises(DigitrecError, match=message) as e:
        read_idx(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(_header(1, 100) + bytes(100))
    p = _raw(tmp_path, good[: len(good) // 2], "x-idx1-ubyte.gz")
    with pytest.raises(DigitrecError, match="corrupt or truncated gzip"):
        read_idx(p)


def test_missing_and_directory(tmp_path):
    with pytest.raises(DigitrecError, match="file not found"):
        read_idx(tmp_path / "nope.gz")
    with pytest.raises(DigitrecError, match="is a directory"):
        read_idx(tmp_path)


def test_pair_checks(tmp_path):
    images = np.zeros((4, 28, 28), np.uint8)
    write_idx(tmp_path / "i.gz", images)
    write_idx(tmp_path / "l3.gz", np.array([1, 2, 3], np.uint8))
    write_idx(tmp_path / "l4bad.gz", np.array([1, 2, 3, 12], np.uint8))
    write_idx(tmp_path / "small.gz", np.zeros((4, 20, 20), np.uint8))
    write_idx(tmp_path / "l4.gz", np.array([1, 2, 3, 4], np.uint8))
    with pytest.raises(DigitrecError, match="4 images but l3.gz has 3 labels"):
        read_images_labels(tmp_path / "i.gz", tmp_path / "l3.gz")
    with pytest.raises(DigitrecError, match="label 12 at index 3 is out of range 0..9"):
        read_images_labels(tmp_path / "i.gz", tmp_path / "l4bad.gz")
    with pytest.raises(DigitrecError, match="images are 20x20, expected 28x28"):
        read_images_labels(tmp_path / "small.gz", tmp_path / "l4.gz")
    with pytest.raises(DigitrecError, match="has 1 dimension"):
        read_images_labels(tmp_path / "l4.gz", tmp_path / "l4.gz")


def test_writer_refuses_wrong_dtype_and_leaves_nothing(tmp_path):
    with pytest.raises(DigitrecError, match="uint8"):
        write_idx(tmp_path / "f.gz", np.zeros((2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dims, data", [((2**31, 28, 28), 100), ((2**32 - 1,) * 3, 100), ((2**31 + 1,), 100),
                                        ((2**31, 2**31, 4), 0)])  # 2^64 bytes: 0 in int64 arithmetic
def test_huge_header_is_refused_before_reading(tmp_path, dims, data):
    """A header may promise anything (dims up to 2^32 each): refused from the header, nothing allocated."""
    p = _raw(tmp_path, _header(len(dims), *dims) + bytes(data))
    with pytest.raises(DigitrecError, match=r"header promises shape .* more than the 2 GiB") as e:
        read_idx(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_huge_header_in_gzip_is_not_inflated(tmp_path):
    """A gzip bomb: 1 GiB of zeros behind a header promising 2^31 × 28 × 28 bytes is refused after the header."""
    import zlib as _zlib

    comp = _zlib.compressobj(9, _zlib.DEFLATED, 31)  # gzip container
    payload = comp.compress(_header(3, 2**31, 28, 28))
    chunk = bytes(1 << 20)
    payload += b"".join(comp.compress(chunk) for _ in range(1024)) + comp.flush()
    p = _raw(tmp_path, payload, "bomb-idx3-ubyte.gz")
    with pytest.raises(DigitrecError, match="more than the 2 GiB"):
        read_idx(p)


def test_zero_images_read_as_an_empty_array(tmp_path):
    write_idx(tmp_path / "i.gz", np.zeros((0, 28, 28), np.uint8))
    assert read_idx(tmp_path / "i.gz").shape == (0, 28, 28)
