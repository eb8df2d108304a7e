"""Shared helpers for the graph/BERT tests: a tiny BERT (same structure as bert-tiny) and a padded batch."""

from __future__ import annotations

import torch

from flow.models.bert import build_bert

# Tiny models run fastest on one thread; with 2 threads per pytest-xdist worker on a shared 2-core
# host, OpenMP threads wait on each other and a 5 ms training step took 0.5 s.
torch.set_num_threads(1)

TINY = {"vocab_size": 120, "hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 64}


def tiny_bert(seed: int = 0):
    model, _ = build_bert(pretrained=False, seed=seed, **TINY)
    return model


def padded_batch(batch: int = 3, length: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, TINY["vocab_size"], (batch, length), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, length // 2:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.arange(batch) % 2}
