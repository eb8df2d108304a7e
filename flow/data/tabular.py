"""Small classification data sets for designs: scikit-learn's bundled sets or a user's ``.npz``.

Every set comes as one seeded, stratified train/test split of float features (N, ...) and
int64 labels. Digits keeps its exact pixel/16 scaling; other scikit-learn sets are standardized
with the training split's mean and deviation; a user's ``.npz`` is used as it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


class DataError(ValueError):
    """A data set that cannot be loaded; the message says what to change."""


@dataclass(frozen=True)
class Split:
    """Train and test features (float32) and labels (int64)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def in_features(self) -> int:
        return int(self.x_train[0].numel())

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def sklearn_names() -> list[str]:
    """The classification sets scikit-learn ships (no download needed)."""
    return ["digits", "iris", "wine", "breast_cancer"]


def load_split(name: str, path: str = "", test_fraction: float = 0.2, seed: int = 0) -> Split:
    """``name`` is one of :func:`sklearn_names` or ``npz`` (with ``path``)."""
    if name == "npz":
        return load_npz(path)
    if name not in sklearn_names():
        raise DataError(f"dataset.name {name!r} is unknown; use one of {', '.join(sklearn_names())}, "
                        f"or 'npz' with dataset.path naming a file with {', '.join(NPZ_ARRAYS)}")
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    if name == "digits":
        x = torch.tensor(bunch.images, dtype=torch.float32) / 16.0  # exact at frac 4
    else:
        x = torch.tensor(bunch.data, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed,
                                   stratify=y.numpy())
    x_train, x_test = x[train], x[test]
    if name != "digits":
        mean, std = x_train.mean(dim=0), x_train.std(dim=0).clamp(min=1e-6)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return Split(x_train, y[train], x_test, y[test])


def load_npz(path: str | Path) -> Split:
    """A user's ``.npz`` holding x_train, y_train, x_test and y_test (labels 0..C-1)."""
    path = Path(path)
    if not str(path) or not path.is_file():
        raise DataError(f"dataset.path {str(path)!r} is not a file; name an .npz holding {', '.join(NPZ_ARRAYS)}")
    with np.load(path, allow_pickle=False) as data:
        missing = [key for key in NPZ_ARRAYS if key not in data.files]
        if missing:
            raise DataError(f"{path} lacks {', '.join(missing)} (it has {', '.join(data.files) or 'nothing'}); "
                            f"save it with np.savez(path, {'=..., '.join(NPZ_ARRAYS)}=...)")
        arrays = {key: data[key] for key in NPZ_ARRAYS}
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if len(x) != len(y) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
            raise DataError(f"{path}: x_{part} and y_{part} must have the same length and y_{part} must be "
                            f"non-negative integer class labels, got shapes {x.shape} and {y.shape} ({y.dtype})")
    return Split(torch.tensor(arrays["x_train"], dtype=torch.float32), torch.tensor(arrays["y_train"], dtype=torch.int64),
                 torch.tensor(arrays["x_test"], dtype=torch.float32), torch.tensor(arrays["y_test"], dtype=torch.int64))
