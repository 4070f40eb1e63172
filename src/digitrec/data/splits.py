"""Train/validation/test splits.

- `paper`: the paper's 80/10/10 — official train and test pooled, then split stratified with a fixed seed.
- `canonical`: official train split 90/10 (stratified) into train/val; the official test set is the test set,
  so results compare with the literature.
`limit` takes a stratified subset of the training part only; validation and test stay whole.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from ..errors import DigitrecError
from .datasets import DigitArrays

SPLITS = ("paper", "canonical")
SPLIT_SEED = 20250101  # fixed: the same split for every run, whatever the training seed
MIN_SAMPLES = 20  # 10 % of them still leaves 2 to validate on


@dataclass(frozen=True)
class Split:
    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_labels), "val": len(self.val_labels), "test": len(self.test_labels)}


def _stratified(labels: np.ndarray, size: int | float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (taken, rest) with `size` taken stratified by label."""
    idx = np.arange(len(labels))
    counts = np.bincount(labels)
    can_stratify = counts[counts > 0].min() >= 2
    try:
        taken, rest = train_test_split(idx, train_size=size, random_state=seed,
                                       stratify=labels if can_stratify else None)
    except ValueError as e:  # too few samples for the sizes asked
        raise DigitrecError(f"cannot split {len(labels)} samples ({' '.join(str(e).split())[:200]})") from None
    return np.sort(taken), np.sort(rest)


def _check_sizes(data: DigitArrays, name: str) -> None:
    """Enough images to split into non-empty train, validation and test parts."""
    n_train, n_test = len(data.train_labels), len(data.test_labels)
    pooled = n_train + n_test if name == "paper" else n_train
    if n_train == 0:
        raise DigitrecError(f"{data.name}: no training images (its train-images file holds 0)")
    if pooled < MIN_SAMPLES:
        parts = "train and validation" + (" and test" if name == "paper" else "")
        raise DigitrecError(f"{data.name}: {pooled} images to split into {parts}; the {name} split needs at least "
                            f"{MIN_SAMPLES}")
    if name == "canonical" and n_test == 0:
        raise DigitrecError(f"{data.name}: no test images (its test-images file holds 0); the canonical split "
                            "evaluates on them")


def stratified_subset(labels: np.ndarray, n: int, seed: int = SPLIT_SEED) -> np.ndarray:
    """Indices of a stratified subset of n samples."""
    if n >= len(labels):
        return np.arange(len(labels))
    n_classes = len(np.unique(labels))
    if n < n_classes:
        raise DigitrecError(f"--limit {n} is smaller than the number of classes ({n_classes})")
    return _stratified(labels, n, seed)[0]


def make_split(data: DigitArrays, name: str = "paper", limit: int | None = None, seed: int = SPLIT_SEED) -> Split:
    if name not in SPLITS:
        raise DigitrecError(f"unknown split {name!r}; choose one of: {', '.join(SPLITS)}")
    if limit is not None and limit <= 0:
        raise DigitrecError(f"--limit must be a positive number of training samples, got {limit}")
    _check_sizes(data, name)
    if name == "paper":
        images = np.concatenate([data.train_images, data.test_images])
        labels = np.concatenate([data.train_labels, data.test_labels])
        train, rest = _stratified(labels, 0.8, seed)
        val_r, test_r = _stratified(labels[rest], 0.5, seed + 1)
        val, test = rest[val_r], rest[test_r]
        parts = (images[train], labels[train], images[val], labels[val], images[test], labels[test])
    else:
        train, val = _stratified(data.train_labels, 0.9, seed)
        parts = (data.train_images[train], data.train_labels[train], data.train_images[val],
                 data.train_labels[val], data.test_images, data.test_labels)
    split = Split(name, *parts)
    if limit is not None and limit < len(split.train_labels):
        keep = stratified_subset(split.train_labels, limit, seed + 2)
        split = Split(name, split.train_images[keep], split.train_labels[keep], *parts[2:])
    return split
