"""Dataset registry, file location, EMNIST orientation (on the real 600-image sample), idx:DIR."""
import numpy as np
import pytest
import torch

from digitrec.data import MNIST, IDXFolder, load, locate, read_idx, write_idx
from digitrec.data.datasets import status
from digitrec.errors import DigitrecError
from digitrec.predict import Predictor


def test_mnist_files_match_published_sha256(data_root):
    rows = status("mnist", data_root, check_hashes=True)
    assert len(rows) == 4 and all(r["sha256_ok"] for r in rows), rows


def test_torchvision_style_dataset(data_root):
    ds = MNIST(data_root, train=False)
    x, y = ds[0]
    assert len(ds) == 10000 and x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and y == 7  # the famous first test digit
    assert ds.data.dtype == torch.uint8 and ds.targets.dtype == torch.int64


def test_real_emnist_label_files(data_root):
    if data_root is None:
        pytest.skip("DIGITREC_DATA not set")
    train = read_idx(data_root / "emnist" / "emnist-digits-train-labels-idx1-ubyte.gz", expect_ndim=1)
    test = read_idx(data_root / "emnist" / "emnist-digits-test-labels-idx1-ubyte.gz", expect_ndim=1)
    assert np.bincount(train).tolist() == [24000] * 10 and np.bincount(test).tolist() == [4000] * 10


def _emnist_folder(tmp_path, images, labels):
    """An EMNIST-format folder (IDX orientation, i.e. transposed) with the official file names."""
    folder = tmp_path / "emnist"
    for part in ("train", "test"):
        write_idx(folder / f"emnist-digits-{part}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"emnist-digits-{part}-labels-idx1-ubyte.gz", labels)
    return tmp_path


def test_emnist_loaded_upright_on_real_sample(tmp_path, emnist_sample, data_root, tiny_run):
    official = read_idx(data_root / "emnist" / "emnist-digits-test-labels-idx1-ubyte.gz")
    assert np.array_equal(official[emnist_sample["index"]], emnist_sample["labels"])  # the sample is what it says

    root = _emnist_folder(tmp_path, emnist_sample["images"], emnist_sample["labels"])
    data = load("emnist-digits", root, download=False)
    assert np.array_equal(data.test_images, emnist_sample["images"].transpose(0, 2, 1))

    # A model that has only seen MNIST reads the digits loaded through the EMNIST path, not the raw arrays.
    predictor = Predictor(tiny_run / "model.pt")
    upright = (predictor.predict(data.test_images) == data.test_labels).mean()
    raw = (predictor.predict(emnist_sample["images"]) == emnist_sample["labels"]).mean()
    assert upright > 0.80 and raw < 0.50 and upright - raw > 0.4, (upright, raw)


def test_missing_dataset_lists_expected_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    with pytest.raises(DigitrecError) as e:
        locate("emnist-digits", tmp_path / "nowhere", download=False)
    msg = str(e.value)
    assert "emnist-digits-train-images-idx3-ubyte.gz" in msg and "emnist-digits-test-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "nowhere" / "emnist") in msg and "\n" not in msg


def test_unknown_dataset():
    with pytest.raises(DigitrecError, match="unknown dataset 'cifar'"):
        load("cifar")


def test_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = np.arange(30, dtype=np.uint8) % 10
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images[:10])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:10])
    ds = IDXFolder(tmp_path, train=True)
    assert len(ds) == 30 and np.array_equal(ds.data.numpy(), images)  # not transposed: not an EMNIST file
    assert IDXFolder(tmp_path, train=False).targets.tolist() == labels[:10].tolist()


def test_idx_folder_errors(tmp_path):
    with pytest.raises(DigitrecError, match="is not a folder"):
        load(f"idx:{tmp_path / 'missing'}")
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DigitrecError, match="expected one train labels file"):
        load(f"idx:{tmp_path}")
