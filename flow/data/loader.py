"""Tokenized datasets and loaders with dynamic padding (each batch padded to its longest review).

`max_length` truncates ([CLS] ... [SEP] kept); `sort_by_length` batches similar lengths together,
which only changes speed for evaluation (accuracy does not depend on order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from flow.data.imdb import TextSplit


class TokenizedDataset(Dataset):
    """Token id lists (unpadded) and labels of one split."""

    def __init__(self, input_ids: Sequence[Sequence[int]], labels: Sequence[int]):
        if len(input_ids) != len(labels):
            raise ValueError(f"{len(input_ids)} token sequences but {len(labels)} labels; they must match one to one")
        self.input_ids = [torch.as_tensor(ids, dtype=torch.long) for ids in input_ids]
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.input_ids[i], int(self.labels[i])

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def tokenize(split: TextSplit, tokenizer: PreTrainedTokenizerBase, max_length: int = 256) -> TokenizedDataset:
    """Tokenize a split with truncation to `max_length` tokens (special tokens included)."""
    if not 8 <= max_length <= 512:
        raise ValueError(f"max_length {max_length} is out of range; BERT takes 8 to 512 tokens")
    enc = tokenizer(list(split.texts), truncation=True, max_length=max_length)
    return TokenizedDataset(enc["input_ids"], split.labels)


@dataclass
class PadCollate:
    """Pad a list of (ids, label) to the longest in the batch; returns the model's keyword inputs."""

    pad_id: int = 0

    def __call__(self, batch: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
        longest = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), longest), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, (ids, _) in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        labels = torch.tensor([label for _, label in batch], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def make_loader(
    ds: TokenizedDataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    pad_id: int = 0,
    sort_by_length: bool = False,
) -> DataLoader:
    """A DataLoader with dynamic padding; `shuffle` is seeded, `sort_by_length` groups equal lengths."""
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} must be at least 1")
    if shuffle and sort_by_length:
        raise ValueError("choose shuffle (training) or sort_by_length (evaluation), not both")
    collate = PadCollate(pad_id)
    if sort_by_length:
        order = sorted(range(len(ds)), key=lambda i: len(ds.input_ids[i]))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        return DataLoader(ds, batch_sampler=batches, collate_fn=collate)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen if shuffle else None, collate_fn=collate)
