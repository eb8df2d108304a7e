"""Test vectors of a design: input codes, expected output codes and labels, one vector a line."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class Vectors:
    """Signed integer codes, shape (vectors, features), and the labels."""

    inputs: torch.Tensor
    expected: torch.Tensor
    labels: torch.Tensor
    meta: dict
    masks: torch.Tensor | None = None  # a design with an attention mask input: 0/1, (vectors, sequence)


def write_rows(path: Path, rows: torch.Tensor | list[list[int]]) -> None:
    """Integer codes, one vector a line, space-separated."""
    rows = rows.tolist() if isinstance(rows, torch.Tensor) else rows
    path.write_text("\n".join(" ".join(map(str, row)) for row in rows) + "\n")


def read_rows(path: Path) -> torch.Tensor:
    """The codes ``write_rows`` wrote, as an int64 tensor (vectors, features)."""
    return torch.tensor([[int(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()])


def write_vectors(folder: Path, vectors: Vectors) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_rows(folder / "inputs.txt", vectors.inputs)
    write_rows(folder / "expected.txt", vectors.expected)
    if vectors.masks is not None:  # the attention mask of each sample, a bit a token
        write_rows(folder / "masks.txt", vectors.masks)
    (folder / "labels.txt").write_text("\n".join(map(str, vectors.labels.tolist())) + "\n")
    (folder / "meta.json").write_text(json.dumps(vectors.meta, indent=2) + "\n")


def read_vectors(folder: Path) -> Vectors:
    missing = [n for n in ("inputs.txt", "expected.txt", "labels.txt", "meta.json") if not (folder / n).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}; re-run `flow emit-rtl` for this design")
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("mask_bits") and not (folder / "masks.txt").exists():
        raise FileNotFoundError(f"{folder} lacks masks.txt (the design takes an attention mask); re-run "
                                f"`flow emit-rtl` for this design")
    return Vectors(read_rows(folder / "inputs.txt"), read_rows(folder / "expected.txt"),
                   torch.tensor([int(v) for v in (folder / "labels.txt").read_text().split()]), meta,
                   read_rows(folder / "masks.txt") if meta.get("mask_bits") else None)
