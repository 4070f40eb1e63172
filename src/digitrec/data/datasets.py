"""Datasets: find the files (flag → $DIGITREC_DATA → user cache → bundled), download what is missing, load upright.

`load("mnist" | "emnist-digits" | "idx:DIR")` returns the official train and test arrays as uint8 numpy.
`load("mnist+fonts+strokes")`: BASE's training set plus a third as many digits rendered from handwriting fonts
(data/fonts.py) and a sixth as many drawn from stroke skeletons of many allographs (data/strokes.py): the styles
MNIST lacks. The test set stays BASE's official one. BASE+fonts and BASE+strokes alone work too.
`MNIST(root, train=True, download=False)` and friends give the torchvision-style Dataset view of the same data.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..errors import DigitrecError
from ..fileio import sha256_file
from . import cache as decoded_cache
from .idx import read_images_labels
from .sources import SOURCES, DatasetSource

ENV_VAR = "DIGITREC_DATA"
BUNDLED_ROOT = Path(__file__).parent / "bundled"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "digitrec"


# extra training handwriting a dataset name can ask for: BASE+fonts, BASE+strokes, BASE+fonts+strokes
EXTRAS = {"fonts": 3, "strokes": 6}  # name → BASE's training set size divided by this many extra digits
EXTRA_SEED = 0  # fixed: every run on the same name trains on the same rendered digits


def dataset_names() -> list[str]:
    return list(SOURCES) + [f"{name}+fonts+strokes" for name in SOURCES] + ["BASE+fonts", "BASE+strokes", "idx:DIR"]


def split_extras(name: str) -> tuple[str, list[str]]:
    """'mnist+fonts+strokes' → ('mnist', ['fonts', 'strokes'])."""
    base, *extras = name.split("+")
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown or len(set(extras)) != len(extras) or not base:
        raise DigitrecError(f"unknown dataset {name!r}: extras after '+' are {', '.join(EXTRAS)} (each once)")
    return base, extras


@dataclass(frozen=True)
class DigitArrays:
    """One dataset's official train and test sets, uint8 N×28×28 images (upright) and uint8 labels."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    location: str
    num_classes: int = 10


def _idx_source(spec: str) -> tuple[DatasetSource, Path]:
    folder = Path(spec[4:]).expanduser()
    if not spec[4:]:
        raise DigitrecError("idx:DIR needs a folder, e.g. idx:/data/fashion-mnist")
    if not folder.is_dir():
        raise DigitrecError(f"{spec}: {folder} is not a folder")

    def find(kind: str, *patterns: str) -> str:
        hits = sorted({Path(p).name for pat in patterns for p in glob.glob(str(folder / pat))})
        hits = [h for h in hits if not h.startswith(".")]
        if len(hits) != 1:
            what = "no file" if not hits else f"{len(hits)} files ({', '.join(hits)})"
            raise DigitrecError(f"{spec}: expected one {kind} file matching {' or '.join(patterns)}, found {what}")
        return hits[0]

    train_images = find("train images", "*train-images*")
    src = DatasetSource(
        name=f"idx:{folder}",
        subdir="",
        train_images=train_images,
        train_labels=find("train labels", "*train-labels*"),
        test_images=find("test images", "*t10k-images*", "*test-images*"),
        test_labels=find("test labels", "*t10k-labels*", "*test-labels*"),
        transposed=train_images.startswith("emnist-"),  # every EMNIST split is stored transposed
    )
    return src, folder


def _candidate_dirs(src: DatasetSource, data_dir: str | os.PathLike | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]).expanduser())
    roots.append(cache_root())
    dirs = []
    for root in roots:
        dirs += [root / src.subdir, root]  # accept DIR/mnist/*.gz and DIR/*.gz
    if src.bundled:
        dirs.append(BUNDLED_ROOT / src.subdir)
    return dirs


def _download_dir(src: DatasetSource, data_dir: str | os.PathLike | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser() / src.subdir
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser() / src.subdir
    return cache_root() / src.subdir


def locate(name: str, data_dir: str | os.PathLike | None = None, download: bool = True,
           progress: bool = True) -> tuple[DatasetSource, Path]:
    """The dataset's source description and the folder holding all four of its files."""
    if name.startswith("idx:"):
        return _idx_source(name)
    if name not in SOURCES:
        raise DigitrecError(f"unknown dataset {name!r}; choose one of: {', '.join(dataset_names())}")
    src = SOURCES[name]
    candidates = _candidate_dirs(src, data_dir)
    for d in candidates:
        if all((d / f).is_file() for f in src.files):
            return src, d
    target = _download_dir(src, data_dir)
    searched = ", ".join(dict.fromkeys(str(d) for d in candidates))
    help_text = (f"{src.name}: files missing. Expected {', '.join(src.files)} in one of: {searched}. "
                 f"Put them in {target} (or pass --data-dir / set ${ENV_VAR})")
    if not download:
        raise DigitrecError(help_text + "; downloading is switched off")
    from .download import fetch  # imported lazily: loading local files needs no network code

    try:
        fetch(src, target, progress=progress)
    except DigitrecError as e:
        raise DigitrecError(f"{help_text}; download failed: {e}") from None
    return src, target


def _with_extras(name: str, data_dir: str | None, download: bool) -> DigitArrays:
    """BASE+fonts / BASE+strokes: BASE's arrays with rendered digits appended to the training set (the test set
    stays BASE's official one)."""
    from .fonts import render_digits, render_strokes  # fonts and their rendering only when asked for

    base_name, extras = split_extras(name)
    base = _load_cached(base_name, data_dir, download)
    images, labels = [base.train_images], [base.train_labels]
    for extra in extras:
        render = render_digits if extra == "fonts" else render_strokes
        x, y = render(len(base.train_labels) // EXTRAS[extra], seed=EXTRA_SEED)
        images.append(x)
        labels.append(y)
    added = ", ".join(f"{len(y)} {e}" for e, y in zip(extras, labels[1:]))
    return DigitArrays(name, np.concatenate(images), np.concatenate(labels), base.test_images, base.test_labels,
                       location=f"{base.location} + {added} digits", num_classes=base.num_classes)


def _decode(src: DatasetSource, folder: Path, label_bound: int) -> dict[str, np.ndarray]:
    """The four IDX files of `src` in `folder`, read, checked and turned upright."""
    arrays = {}
    for part, (images_name, labels_name) in (("train", (src.train_images, src.train_labels)),
                                             ("test", (src.test_images, src.test_labels))):
        images, labels = read_images_labels(folder / images_name, folder / labels_name, label_bound)
        if src.transposed:
            images = np.ascontiguousarray(images.transpose(0, 2, 1))
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = images, labels
    return arrays


@lru_cache(maxsize=8)
def _load_cached(name: str, data_dir: str | None, download: bool) -> DigitArrays:
    if "+" in name and not name.startswith("idx:"):
        return _with_extras(name, data_dir, download)
    src, folder = locate(name, data_dir, download)
    # Class count of an arbitrary IDX dataset is read from its labels (EMNIST letters: 27).
    label_bound = 256 if name.startswith("idx:") else src.num_classes
    files = [folder / f for f in src.files]
    arrays = decoded_cache.load_or_build(cache_root() / "decoded", str(folder.resolve()), files,
                                         f"transposed={src.transposed}|labels<{label_bound}",
                                         lambda: _decode(src, folder, label_bound))
    parts = [arrays[k] for k in decoded_cache.NAMES]
    num_classes = src.num_classes
    if name.startswith("idx:"):
        num_classes = max(10, int(max(parts[1].max(initial=0), parts[3].max(initial=0))) + 1)
    return DigitArrays(name, *parts, location=str(folder), num_classes=num_classes)


def load(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> DigitArrays:
    """Load a dataset's official train and test arrays (upright, uint8)."""
    return _load_cached(name, None if data_dir is None else str(data_dir), download)


def status(name: str, data_dir: str | os.PathLike | None = None, check_hashes: bool = False) -> list[dict]:
    """Per file: where it was found (or not) and, with check_hashes, whether its sha256 is the published one."""
    src = SOURCES[name]
    rows = []
    for f in src.files:
        found = next((d / f for d in _candidate_dirs(src, data_dir) if (d / f).is_file()), None)
        row = {"dataset": name, "file": f, "path": str(found) if found else None}
        if found is not None:
            row["bytes"] = found.stat().st_size
            if check_hashes:
                row["sha256_ok"] = sha256_file(found) == src.sha256[f]
        rows.append(row)
    return rows


class DigitDataset(torch.utils.data.Dataset):
    """torchvision-style view: `data` (uint8 N×28×28 tensor), `targets` (int64), items are (1×28×28 float 0–1, int)."""

    dataset_name = "mnist"

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True, download: bool = False) -> None:
        arrays = load(self.dataset_name, root, download)
        images, labels = (arrays.train_images, arrays.train_labels) if train else (arrays.test_images, arrays.test_labels)
        self.data = torch.from_numpy(images)
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.train = train
        self.num_classes = arrays.num_classes

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.data[i].unsqueeze(0).float().div_(255), int(self.targets[i])


class MNIST(DigitDataset):
    dataset_name = "mnist"


class EMNISTDigits(DigitDataset):
    dataset_name = "emnist-digits"


class IDXFolder(DigitDataset):
    """Any MNIST-format folder (Fashion-MNIST, KMNIST, other EMNIST splits)."""

    def __init__(self, root: str | os.PathLike, train: bool = True, download: bool = False) -> None:
        self.dataset_name = f"idx:{root}"
        super().__init__(None, train, False)
