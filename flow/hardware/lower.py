"""Lower a captured float graph to a chain of hardware layers.

Supported: Linear, ReLU, LeakyReLU with slope 2**-k, BatchNorm1d (folded into the Linear
before it), and as wiring Flatten/view/reshape and eval-mode Dropout (nn.Identity leaves no
node). Any other op is an error that names the node,
its op, its module and this list: nothing is mapped silently.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import fx, nn

from flow.graph import Graph
from flow.graph.capture import owner
from flow.graph.ops import op_kind, op_name

SUPPORTED = ("Linear, ReLU, LeakyReLU (slope 2**-k), BatchNorm1d (folded into the preceding Linear), "
             "Flatten/view/reshape and eval-mode Dropout/Identity (wiring)")
WIRING_OPS = {"flatten", "view", "reshape", "_unsafe_view", "contiguous", "clone", "alias"}


class LoweringError(ValueError):
    """The graph holds something flow cannot turn into hardware."""


@dataclass
class FloatLayer:
    """One hardware layer before quantization: a Linear (BatchNorm folded in) or an activation."""

    kind: str  # "linear" | "relu" | "leaky_relu"
    name: str  # module path, e.g. "fc1"
    linear: nn.Linear | None = None
    shift: int = 0  # leaky ReLU slope 2**-shift


def fold_batchnorm(linear: nn.Linear, bn: nn.BatchNorm1d) -> nn.Linear:
    """A copy of ``linear`` computing bn(linear(x)) in eval mode."""
    folded = copy.deepcopy(linear)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = linear.bias.detach() if linear.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        folded.weight.copy_(linear.weight.detach() * scale[:, None])
        if folded.bias is None:
            folded.bias = nn.Parameter(torch.zeros(linear.out_features))
        folded.bias.copy_((bias - bn.running_mean) * scale + bn.bias.detach())
    return folded


def _unsupported(node: fx.Node, model: nn.Module, why: str = "unsupported op") -> LoweringError:
    path = owner(node)
    module = type(model.get_submodule(path)).__name__ if path else "top level"
    return LoweringError(f"{why} {node.target} at node '{node.name}' (module '{path or '-'}': {module}); "
                         f"flow lowers {SUPPORTED}")


def _slope_shift(node: fx.Node, model: nn.Module) -> int:
    slope = float(node.args[1]) if len(node.args) > 1 else 0.01
    shift = -math.log2(slope) if slope > 0 else float("nan")
    if not (shift == shift and shift == int(shift) and shift >= 1):
        raise _unsupported(node, model, f"leaky ReLU slope {slope} is not 2**-k (k >= 1) in")
    return int(shift)


def lower(graph: Graph, model: nn.Module) -> list[FloatLayer]:
    """The chain of layers the graph computes, in order, from input to output."""
    layers: list[FloatLayer] = []
    current: fx.Node | None = None  # the node carrying the activation vector
    for node in graph.nodes:
        if node.op in ("get_attr", "output") or op_kind(node) == "meta":
            continue
        if node.op == "placeholder":
            if current is not None:
                raise LoweringError(f"input '{node.name}' is a second model input; flow lowers single-input chains")
            current = node
            continue
        if node.op != "call_function":
            raise _unsupported(node, model)
        name = op_name(node)
        if not node.args or node.args[0] is not current:
            raise LoweringError(f"node '{node.name}' ({node.target}) does not consume the previous layer's "
                                f"output; flow lowers chains of {SUPPORTED}")
        if name in ("dropout", "native_dropout", "feature_dropout"):
            if len(node.args) > 2 and node.args[2]:  # dropout(input, p, train): train-mode dropout is random
                raise _unsupported(node, model, "train-mode dropout (capture the model in eval mode)")
        elif name in WIRING_OPS:
            if name in ("view", "reshape", "_unsafe_view", "flatten") and node.meta.get("val") is not None:
                if node.meta["val"].dim() != 2:
                    raise _unsupported(node, model, "reshape to a non-vector shape")
        elif name == "linear":
            module = model.get_submodule(owner(node))
            if not isinstance(module, nn.Linear):
                raise _unsupported(node, model, "linear outside an nn.Linear module")
            layers.append(FloatLayer("linear", owner(node), copy.deepcopy(module)))
        elif name == "batch_norm" or name == "_native_batch_norm_legit_no_training":
            module = model.get_submodule(owner(node))
            if not (isinstance(module, nn.BatchNorm1d) and layers and layers[-1].kind == "linear"):
                raise _unsupported(node, model, "batch norm not directly after a Linear:")
            layers[-1].linear = fold_batchnorm(layers[-1].linear, module)
        elif name == "relu":
            layers.append(FloatLayer("relu", owner(node)))
        elif name == "leaky_relu":
            layers.append(FloatLayer("leaky_relu", owner(node), shift=_slope_shift(node, model)))
        else:
            raise _unsupported(node, model)
        current = node
    if not layers or layers[0].kind != "linear":
        raise LoweringError(f"the model must start with a Linear layer; flow lowers {SUPPORTED}")
    return layers
