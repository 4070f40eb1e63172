"""The decoded-dataset cache: exact arrays, invalidated by any change of the data, damaged entries ignored and
rewritten, atomic and bounded writes, never required."""
import numpy as np
import pytest

from digitrec.data import cache, datasets, load, write_idx


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(cache.ENV_SWITCH, raising=False)
    datasets._load_cached.cache_clear()
    yield tmp_path / "cache" / "digitrec" / "decoded"
    datasets._load_cached.cache_clear()


def _folder(path, n=1400, seed=0):
    """An MNIST-format folder just over cache.MIN_BYTES of pixels (raw IDX files: written fast)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    write_idx(path / "train-images-idx3-ubyte", images)
    write_idx(path / "train-labels-idx1-ubyte", labels)
    write_idx(path / "t10k-images-idx3-ubyte", images[:100])
    write_idx(path / "t10k-labels-idx1-ubyte", labels[:100])
    return images, labels


def _load(spec):
    datasets._load_cached.cache_clear()  # the in-process cache would hide the file cache
    return load(spec)


def _no_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded the IDX files although a valid cache entry exists")

    monkeypatch.setattr(datasets, "_decode", fail)


def test_mnist_from_the_cache_is_identical_to_decoding(user_cache, data_root, monkeypatch):
    first = _load("mnist")  # decoded, then written
    entries = list(user_cache.glob("*.npz"))
    assert len(entries) == 1 and not list(user_cache.glob(".*.tmp"))
    _, folder = datasets.locate("mnist", download=False)
    decoded = datasets._decode(datasets.SOURCES["mnist"], folder, 10)
    _no_decoding(monkeypatch)
    again = _load("mnist")
    for name in cache.NAMES:
        assert np.array_equal(getattr(again, name), decoded[name]) and getattr(again, name).dtype == np.uint8
        assert np.array_equal(getattr(first, name), decoded[name])
    assert again.train_images.shape == (60000, 28, 28) and again.num_classes == 10


def test_changed_data_invalidates_and_replaces_the_entry(user_cache, tmp_path):
    images, _ = _folder(tmp_path / "d")
    assert np.array_equal(_load(f"idx:{tmp_path / 'd'}").train_images, images)
    old = list(user_cache.glob("*.npz"))
    changed, _ = _folder(tmp_path / "d", seed=1)  # same sizes, other pixels
    assert np.array_equal(_load(f"idx:{tmp_path / 'd'}").train_images, changed)
    new = list(user_cache.glob("*.npz"))
    assert len(old) == len(new) == 1 and old != new  # one entry per dataset location


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_damaged_entry_is_ignored_and_rewritten(user_cache, tmp_path, damage):
    images, labels = _folder(tmp_path / "d")
    _load(f"idx:{tmp_path / 'd'}")
    entry = next(user_cache.glob("*.npz"))
    raw = bytearray(entry.read_bytes())
    if damage == "flip":  # a pixel deep inside the train images: only the CRC-32 can tell
        raw[len(raw) // 2] ^= 0xFF
    entry.write_bytes(bytes(raw[: len(raw) // 3]) if damage == "truncate" else
                      b"not a zip file" if damage == "garbage" else bytes(raw))
    assert cache.read(entry) is None
    data = _load(f"idx:{tmp_path / 'd'}")
    assert np.array_equal(data.train_images, images) and np.array_equal(data.train_labels, labels)
    assert cache.read(entry) is not None  # rewritten whole


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    images, _ = _folder(tmp_path / "d")
    try:
        assert np.array_equal(_load(f"idx:{tmp_path / 'd'}").train_images, images)
    finally:
        datasets._load_cached.cache_clear()


def test_switched_off_and_small_datasets_write_nothing(user_cache, tmp_path, monkeypatch):
    _folder(tmp_path / "small", n=100)
    _load(f"idx:{tmp_path / 'small'}")
    monkeypatch.setenv(cache.ENV_SWITCH, "0")
    _folder(tmp_path / "big")
    _load(f"idx:{tmp_path / 'big'}")
    assert not user_cache.exists() or not list(user_cache.iterdir())


def test_the_key_depends_on_content_and_recipe(tmp_path):
    _folder(tmp_path / "a")
    _folder(tmp_path / "b")
    files = lambda d: [tmp_path / d / f for f in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    assert cache.source_key(files("a"), "r") == cache.source_key(files("b"), "r")  # same bytes, other folder
    assert cache.source_key(files("a"), "r") != cache.source_key(files("a"), "transposed")
    _folder(tmp_path / "b", seed=2)
    assert cache.source_key(files("a"), "r") != cache.source_key(files("b"), "r")
