"""Table 1's classical baselines (SVM, k-NN) as scikit-learn Pipelines with fit/predict.

They are not nn.Modules, so they live in their own small registry; `digitrec compare` dispatches on it.
Input: uint8 N×28×28 images (or N×784); the first step flattens and scales pixels to 0–1.
Choices (Table 1's numbers for them come from `python -m benchmarks.table1`, recorded in benchmarks/results/):
- both use PCA to 50 dimensions (not whitened: whitening blows up the noisy low-variance directions,
  which hurts an RBF kernel and Euclidean neighbours alike), fitted on the training images only;
- svm: RBF SVC, C=10, gamma='scale' (1 / (n_features · X.var())), one-vs-one as libsvm does it;
- knn: k=3, distance-weighted votes, Euclidean distance in the PCA-50 space (faster and a little more
  accurate than on raw pixels).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC

from ..errors import DigitrecError

PCA_DIMS = 50


def _flatten_scale(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


def _pixels() -> FunctionTransformer:
    return FunctionTransformer(_flatten_scale)


def svm(C: float = 10.0, gamma: str | float = "scale", pca: int = PCA_DIMS, seed: int = 0) -> Pipeline:
    return Pipeline([("pixels", _pixels()), ("pca", PCA(pca, random_state=seed)),
                     ("svc", SVC(C=C, gamma=gamma, kernel="rbf"))])


def knn(k: int = 3, pca: int = PCA_DIMS, seed: int = 0) -> Pipeline:
    return Pipeline([("pixels", _pixels()), ("pca", PCA(pca, random_state=seed)),
                     ("knn", KNeighborsClassifier(n_neighbors=k, weights="distance"))])


CLASSICAL: dict[str, Callable[..., Pipeline]] = {"svm": svm, "knn": knn}


def describe(name: str, pipe: Pipeline) -> str:
    """One line saying what the pipeline is, with its hyperparameters (for tables and reports)."""
    pca = pipe.named_steps["pca"]
    if name == "svm":
        svc = pipe.named_steps["svc"]
        return f"pixels/255 → PCA-{pca.n_components} → RBF SVC (C={svc.C:g}, gamma={svc.gamma!r})"
    knn_ = pipe.named_steps["knn"]
    return f"pixels/255 → PCA-{pca.n_components} → k-NN (k={knn_.n_neighbors}, {knn_.weights}-weighted)"


def confidence(pipe: Pipeline, images: np.ndarray) -> np.ndarray:
    """How sure the model is of its answer, per image: k-NN's weighted vote share; the SVM's one-vs-rest
    decision value (vote count plus a tie-breaking margin term, so roughly 0–9 for 10 classes)."""
    est = pipe.steps[-1][1]
    if hasattr(est, "predict_proba") and not isinstance(est, SVC):
        return pipe.predict_proba(images).max(1)
    return pipe.decision_function(images).max(1)


def score_name(name: str) -> str:
    return {"knn": "vote share", "svm": "one-vs-rest decision value"}.get(name, "score")


def create(name: str, **options) -> Pipeline:
    if name not in CLASSICAL:
        raise DigitrecError(f"unknown classical model {name!r}; choose one of: {', '.join(CLASSICAL)}")
    try:
        return CLASSICAL[name](**options)
    except TypeError as e:
        raise DigitrecError(f"model {name!r}: bad option ({e})") from None
