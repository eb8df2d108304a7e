"""Module pass: BERT's LayerNorms, GELU and attention softmax replaced by flow's integer ops
(flow.nn.transformer), in place, for QAT through the approximations and for their accuracy.

The softmax is reached through transformers' attention interface: each self-attention module
gets a ``QuantSoftmax`` and the model runs the eager attention with it (``flow_integer``). With
``attention_in`` set, attention's two matmuls are ``QuantMatmul`` too (Q·Kᵀ scaled by an exact
shift, A·V), and ``tanh_in`` makes the pooler's tanh a ``QuantTanh``: with every Linear's input
and output quantized as well, every tensor of the encoder is fixed point (the hardware's model).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from flow.formats.fixed import FixedFormat
from flow.nn.transformer import QuantGELU, QuantLayerNorm, QuantMatmul, QuantSoftmax, QuantTanh, attention_scale_shift

ATTENTION_NAME = "flow_integer"


@dataclass(frozen=True)
class IntegerOpsConfig:
    """Formats of the integer ops; the defaults hold bert-tiny's activations (|x| < 128)."""

    softmax_in: FixedFormat = field(default_factory=lambda: FixedFormat(16, 8))
    softmax_out_frac: int = 8
    gelu_in: FixedFormat = field(default_factory=lambda: FixedFormat(16, 8))
    gelu_out: FixedFormat = field(default_factory=lambda: FixedFormat(16, 8))
    layer_norm_in: FixedFormat = field(default_factory=lambda: FixedFormat(16, 8))
    layer_norm_out: FixedFormat = field(default_factory=lambda: FixedFormat(16, 8))
    layer_norm_affine: FixedFormat = field(default_factory=lambda: FixedFormat(16, 10))
    attention_in: FixedFormat | None = None  # Q, K and V in the matmuls (None: the matmuls stay float)
    context_out: FixedFormat | None = None  # A·V's output (default: attention_in)
    tanh_in: FixedFormat | None = None  # the pooler's tanh input (None: float tanh)
    tanh_out_frac: int = 8


@dataclass(frozen=True)
class IntegerOpsReport:
    """Which modules the pass replaced, by dotted name."""

    layer_norms: tuple[str, ...]
    gelus: tuple[str, ...]
    softmaxes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"layer_norms": list(self.layer_norms), "gelus": list(self.gelus), "softmaxes": list(self.softmaxes)}


def _attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
               **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager scaled dot-product attention whose softmax is the module's ``QuantSoftmax`` (and whose
    matmuls are its ``QuantMatmul``s when it has them)."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores_op = getattr(module, "flow_scores", None)
    if scores_op is not None:
        if scaling != 2.0 ** -scores_op.scale_shift:
            raise ValueError(f"attention scaling {scaling} is not 2**-{scores_op.scale_shift}; flow scales Q·Kᵀ "
                             "exactly by a shift only (a head size that is a power of 4)")
        scores = scores_op(query, key.transpose(2, 3))
    else:
        scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask  # masked keys saturate to the softmax input's lowest code: exp 0
    weights = nn.functional.dropout(module.flow_softmax(scores), p=dropout, training=module.training)
    context_op = getattr(module, "flow_context", None)
    context = context_op(weights, value) if context_op is not None else torch.matmul(weights, value)
    return context.transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION_NAME, _attention)
AttentionMaskInterface.register(ATTENTION_NAME, eager_mask)  # an additive float mask, as eager attention takes


def _replace(model: nn.Module, wanted: Callable[[nn.Module], bool], build: Callable[[nn.Module], nn.Module]) -> list[str]:
    names = [name for name, module in model.named_modules() if name and wanted(module)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, build(model.get_submodule(name)))
    return names


def use_integer_ops(model: nn.Module, config: IntegerOpsConfig | None = None) -> IntegerOpsReport:
    """Swap every LayerNorm, GELU activation and self-attention softmax of a Hugging Face BERT for
    flow's integer ops, in place; a model without them is a one-line error."""
    config = config or IntegerOpsConfig()
    norms = _replace(model, lambda m: isinstance(m, nn.LayerNorm), lambda m: QuantLayerNorm.from_float(
        m, config.layer_norm_in, config.layer_norm_out, config.layer_norm_affine))
    gelus = []
    for name, module in model.named_modules():
        act = getattr(module, "intermediate_act_fn", None)
        if act is not None and not isinstance(act, QuantGELU):
            if type(act).__name__ != "GELUActivation":
                raise ValueError(f"{name}.intermediate_act_fn is {type(act).__name__}, not the erf GELU flow's integer "
                                 "GELU replaces; build the model with hidden_act='gelu'")
            module.intermediate_act_fn = QuantGELU(config.gelu_in, config.gelu_out)
            gelus.append(f"{name}.intermediate_act_fn")
    softmaxes = []
    for name, module in model.named_modules():
        if type(module).__name__ == "BertSelfAttention":
            module.flow_softmax = QuantSoftmax(config.softmax_in, config.softmax_out_frac)
            softmaxes.append(f"{name}.flow_softmax")
            if config.attention_in is not None:
                shift = attention_scale_shift(module.attention_head_size)
                module.flow_scores = QuantMatmul(config.attention_in, config.attention_in, config.softmax_in, shift)
                module.flow_context = QuantMatmul(module.flow_softmax.out_fmt, config.attention_in,
                                                  config.context_out or config.attention_in)
    if config.tanh_in is not None:
        for module in model.modules():
            if type(module).__name__ == "BertPooler":
                module.activation = QuantTanh(config.tanh_in, config.tanh_out_frac)
    if not (norms or gelus or softmaxes):
        raise ValueError(f"{type(model).__name__} has no LayerNorm, GELU or BERT self-attention to replace; "
                         "pass a Hugging Face BERT")
    if softmaxes:
        model.set_attn_implementation(ATTENTION_NAME)
    return IntegerOpsReport(tuple(norms), tuple(gelus), tuple(softmaxes))
