"""Best-so-far curves: one line per group of studies (the mean over its seeds) with the spread
(min to max over seeds) shaded."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def curve_stats(curves: Sequence[Sequence[float]]) -> tuple[list[float], list[float], list[float]]:
    """Per trial index: mean, min and max over the curves that reach it."""
    length = max((len(c) for c in curves), default=0)
    mean, low, high = [], [], []
    for i in range(length):
        values = [c[i] for c in curves if len(c) > i]
        mean.append(sum(values) / len(values))
        low.append(min(values))
        high.append(max(values))
    return mean, low, high


def plot_best_so_far(groups: Mapping[str, Sequence[Sequence[float]]], path: str | Path, title: str,
                     ylabel: str = "best validation accuracy so far",
                     notes: Mapping[str, str] | None = None) -> Path:
    """One curve per group (label -> best-so-far curves of its seeds), each label followed by its
    ``notes`` entry (e.g. how many trials ended at chance); returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, curves in groups.items():
        if not curves:
            continue
        mean, low, high = curve_stats(curves)
        x = list(range(1, len(mean) + 1))
        note = f"; {notes[label]}" if notes and label in notes else ""
        line, = ax.plot(x, mean, "-", marker="o", markersize=3, label=f"{label} (mean of {len(curves)}{note})")
        if len(curves) > 1:
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
    ax.set(xlabel="trial", ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
