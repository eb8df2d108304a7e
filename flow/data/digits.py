"""scikit-learn's 8x8 handwritten digits (1,797 images, shipped with the package)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DigitsSplit:
    """Images scaled to pixel/16 in [0, 1] (exact at frac 4), shape (N, 8, 8), and labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_split(test_fraction: float = 0.2, seed: int = 0) -> DigitsSplit:
    """A fixed, seeded, stratified train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.int64)
    index = torch.arange(len(labels)).numpy()
    train_idx, test_idx = train_test_split(index, test_size=test_fraction, random_state=seed,
                                           stratify=labels.numpy())
    return DigitsSplit(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])
