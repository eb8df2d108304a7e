"""scikit-learn's 8x8 handwritten digits (1,797 images, shipped with the package)."""
from __future__ import annotations

from flow.data.tabular import Split, load_split

DigitsSplit = Split  # images scaled to pixel/16 in [0, 1] (exact at frac 4), shape (N, 8, 8)


def load_digits_split(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A fixed, seeded, stratified train/test split."""
    return load_split("digits", "", test_fraction, seed)
