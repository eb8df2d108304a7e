"""BERT for sequence classification: the pretrained `prajjwal1/bert-tiny` when the hub or the
local cache has it, otherwise the same shape built from `BertConfig` and trained from scratch.

The returned `ModelSource` says which of the two was used, so every result can record it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from transformers import BertConfig, BertForSequenceClassification
from transformers.utils import logging as hf_logging

from flow.hub import hub_status

PRETRAINED_NAME = "prajjwal1/bert-tiny"

#: The bert-tiny shape (LABS.md shared setup): 4.39 M parameters, 3.97 M of them embeddings.
BERT_TINY = {
    "vocab_size": 30522,
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 512,
    "max_position_embeddings": 512,
    "num_labels": 2,
}


@dataclass(frozen=True)
class ModelSource:
    """Where the weights came from: `pretrained` (hub or cache) or `scratch` (random init)."""

    kind: Literal["pretrained", "scratch"]
    name: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def bert_config(**overrides: Any) -> BertConfig:
    """The bert-tiny `BertConfig` with overrides (e.g. `hidden_size` for the NAS lab)."""
    unknown = sorted(set(overrides) - set(BertConfig().to_dict()))
    if unknown:
        raise ValueError(f"unknown BertConfig field(s) {unknown}; see transformers.BertConfig for the accepted fields")
    cfg = BertConfig(**{**BERT_TINY, **overrides})
    if cfg.hidden_size % cfg.num_attention_heads:
        raise ValueError(
            f"hidden_size {cfg.hidden_size} is not divisible by num_attention_heads {cfg.num_attention_heads}; "
            "pick a head count that divides the hidden size"
        )
    return cfg


def build_bert(
    pretrained: bool | Literal["auto"] = "auto",
    name: str = PRETRAINED_NAME,
    seed: int = 0,
    **overrides: Any,
) -> tuple[BertForSequenceClassification, ModelSource]:
    """Build BERT for 2-label classification; `pretrained="auto"` tries hub/cache then falls back.

    `pretrained=True` raises if the checkpoint cannot be loaded; `False` always builds from config.
    Config overrides imply a new shape, so they are only allowed with `pretrained=False`.
    """
    if overrides and pretrained is True:
        raise ValueError("config overrides change the shape; pass pretrained=False (or 'auto') to build from config")
    reason = "pretrained=False requested"
    if pretrained is not False and not overrides:
        model, reason = _try_pretrained(name)
        if model is not None:
            return model, ModelSource("pretrained", name, reason)
        if pretrained is True:
            raise RuntimeError(f"cannot load {name}: {reason}; connect to the hub or fill the HF cache, or use pretrained=False")
    elif overrides:
        reason = f"config overrides {sorted(overrides)}"
    torch.manual_seed(seed)
    model = BertForSequenceClassification(bert_config(**overrides))
    return model, ModelSource("scratch", "bert-tiny shape from BertConfig", reason)


def _try_pretrained(name: str) -> tuple[BertForSequenceClassification | None, str]:
    """Load from the hub when reachable, else from the local HF cache only; never hangs."""
    reachable, why = hub_status()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = BertForSequenceClassification.from_pretrained(name, num_labels=2, local_files_only=not reachable)
        return model, "downloaded from the hub" if reachable else "loaded from the local Hugging Face cache"
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"{why}; not in the local cache ({first[:120]})"
    finally:
        hf_logging.set_verbosity(verbosity)


def parameter_count(model: torch.nn.Module) -> int:
    """Number of distinct parameters (shared tensors counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
