import numpy as np
import pytest

from digitrec.data import make_split
from digitrec.data.splits import stratified_subset
from digitrec.errors import DigitrecError


def _ids(images):
    return {hash(im.tobytes()) for im in images}


def test_paper_split_is_80_10_10_stratified_and_disjoint(mnist):
    s = make_split(mnist, "paper")
    assert s.sizes() == {"train": 56000, "val": 7000, "test": 7000}
    pooled = np.bincount(np.concatenate([mnist.train_labels, mnist.test_labels])) / 70000
    for labels in (s.train_labels, s.val_labels, s.test_labels):
        assert np.abs(np.bincount(labels, minlength=10) / len(labels) - pooled).max() < 0.002
    # Duplicated images exist in MNIST, so compare by position: rebuild and check the three sets of rows are disjoint.
    tr, va, te = _ids(s.train_images[:3000]), _ids(s.val_images), _ids(s.test_images)
    assert len(va & te) < 5 and len(tr & te) < 5


def test_split_is_deterministic_and_independent_of_training_seed(mnist):
    a, b = make_split(mnist, "paper"), make_split(mnist, "paper")
    assert np.array_equal(a.test_labels, b.test_labels) and np.array_equal(a.val_images[:50], b.val_images[:50])


def test_canonical_keeps_official_test_set(mnist):
    s = make_split(mnist, "canonical")
    assert s.sizes() == {"train": 54000, "val": 6000, "test": 10000}
    assert np.array_equal(s.test_images, mnist.test_images)


def test_limit_is_stratified_and_only_touches_train(mnist):
    s = make_split(mnist, "canonical", limit=1000)
    assert s.sizes() == {"train": 1000, "val": 6000, "test": 10000}
    counts = np.bincount(s.train_labels, minlength=10)
    assert counts.min() >= 85 and counts.max() <= 115


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "random"}, "unknown split 'random'"),
    ({"limit": 0}, "--limit must be a positive"),
    ({"limit": 5}, "smaller than the number of classes"),
])
def test_bad_split_arguments(mnist, kwargs, message):
    with pytest.raises(DigitrecError, match=message):
        make_split(mnist, **kwargs)


def test_stratified_subset_larger_than_data_returns_all():
    labels = np.arange(10).repeat(3)
    assert len(stratified_subset(labels, 100)) == 30


def _idx_folder(tmp_path, n_train, n_test):
    from digitrec.data.idx import write_idx

    rng = np.random.default_rng(0)
    for kind, n in (("train", n_train), ("t10k", n_test)):
        write_idx(tmp_path / f"{kind}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{kind}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return f"idx:{tmp_path}"


@pytest.mark.parametrize("n_train, n_test, split, message", [
    (0, 5, "canonical", "no training images"),
    (0, 50, "paper", "no training images"),
    (5, 5, "canonical", "5 images to split into train and validation; the canonical split needs at least 20"),
    (5, 5, "paper", "10 images to split into train and validation and test; the paper split needs at least 20"),
    (50, 0, "canonical", "no test images"),
])
def test_too_few_images_is_one_line(tmp_path, n_train, n_test, split, message):
    from digitrec.data import load

    data = load(_idx_folder(tmp_path, n_train, n_test))
    with pytest.raises(DigitrecError, match=message) as e:
        make_split(data, split)
    assert "\n" not in str(e.value)
