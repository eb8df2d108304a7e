"""Lower a captured float graph to a DAG of hardware layers.

Supported: Linear, ReLU, LeakyReLU with slope 2**-k, BatchNorm1d (folded into the Linear
before it), the residual add of two equal-shaped tensors, concatenation of features, and as
wiring Flatten/view/reshape and eval-mode Dropout (nn.Identity leaves no node). A tensor may
feed several layers. Any other op is an error that names the node, its op, its module and this
list: nothing is mapped silently.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from flow.graph import Graph
from flow.graph.capture import owner
from flow.graph.ops import op_kind, op_name

SUPPORTED = ("Linear, ReLU, LeakyReLU (slope 2**-k), BatchNorm1d (folded into the preceding Linear), "
             "residual add of two equal-shaped tensors, cat along the last dimension, "
             "Flatten/view/reshape and eval-mode Dropout/Identity (wiring)")
WIRING_OPS = {"flatten", "view", "reshape", "_unsafe_view", "contiguous", "clone", "alias"}
INPUT = "input"  # the name of the model's input stream; no layer takes it


class LoweringError(ValueError):
    """The graph holds something flow cannot turn into hardware."""


@dataclass
class FloatLayer:
    """One hardware layer before quantization: a Linear (BatchNorm folded in), an activation, or
    a join (``add``, ``concat``) of two earlier layers' outputs."""

    kind: str  # "linear" | "relu" | "leaky_relu" | "add" | "concat"
    name: str  # unique: the module path ("fc1"), else the graph node's name ("add")
    inputs: tuple[str, ...] = (INPUT,)  # names of the layers feeding it (INPUT: the model input)
    linear: nn.Linear | None = None
    shift: int = 0  # leaky ReLU slope 2**-shift
    features: int = 0  # elements of the output vector


@dataclass
class FloatGraph:
    """The lowered model: layers in topological order, the last one the output."""

    layers: list[FloatLayer]
    input_features: int

    def __iter__(self) -> Iterator[FloatLayer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> FloatLayer:
        return self.layers[index]


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


def _features(node: fx.Node) -> int:
    value = node.meta.get("val")
    return int(value.shape[-1]) if value is not None and value.dim() >= 1 else 0


class _Namer:
    """Unique layer names: the module path, else the node's name, with a suffix on a repeat."""

    def __init__(self) -> None:
        self.taken = {INPUT}

    def __call__(self, preferred: str, node: fx.Node) -> str:
        name, count = preferred or node.name, 1
        while name in self.taken:
            name, count = f"{preferred or node.name}_{count}", count + 1
        self.taken.add(name)
        return name


def _tensor_args(node: fx.Node, model: nn.Module) -> list[fx.Node]:
    args = node.args[0] if op_name(node) == "cat" else node.args[:2]
    if not all(isinstance(arg, fx.Node) for arg in args):
        raise _unsupported(node, model, "an operand that is not a tensor of the graph in")
    return list(args)


def _check_join(node: fx.Node, operands: list[fx.Node], model: nn.Module) -> None:
    shapes = [tuple(arg.meta["val"].shape) if arg.meta.get("val") is not None else None for arg in operands]
    if any(shape is None or len(shape) != 2 for shape in shapes):
        raise _unsupported(node, model, f"a join of non-vector shapes {shapes} in")
    if op_name(node) == "add":
        if node.kwargs.get("alpha", 1) != 1:
            raise _unsupported(node, model, "add with alpha != 1 in")
        if shapes[0] != shapes[1]:
            path = owner(node) or "-"
            raise LoweringError(f"residual add at node '{node.name}' (module '{path}') joins branches of shapes "
                                f"{shapes[0]} and {shapes[1]}; give both branches the same width (for example a "
                                f"Linear on the shortcut)")
    else:
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if dim not in (-1, 1):
            raise _unsupported(node, model, f"cat along dimension {dim} (flow concatenates features, dim=-1) in")


def lower(graph: Graph, model: nn.Module) -> FloatGraph:
    """The layers the graph computes, in topological order, ending with the model's output.

    Wiring (reshapes, eval-mode dropout) maps a node to the layer it passes on; a tensor with
    several consumers feeds each of them (the hardware graph forks it)."""
    layers: list[FloatLayer] = []
    source: dict[fx.Node, str] = {}  # node -> the layer whose output it carries
    by_name: dict[str, FloatLayer] = {}
    name_of = _Namer()
    input_features = 0

    def add(layer: FloatLayer, node: fx.Node) -> None:
        layers.append(layer)
        by_name[layer.name] = layer
        source[node] = layer.name

    def feeding(node: fx.Node, arg: Any) -> str:
        if not isinstance(arg, fx.Node) or arg not in source:
            raise LoweringError(f"node '{node.name}' ({node.target}) reads '{arg}', which is not a lowered "
                                f"tensor; flow lowers {SUPPORTED}")
        return source[arg]

    for node in graph.nodes:
        if node.op in ("get_attr",) or op_kind(node) == "meta":
            continue
        if node.op == "output":
            result = node.args[0]
            result = result[0] if isinstance(result, tuple | list) and len(result) == 1 else result
            last = feeding(node, result)
            if last == INPUT or last != layers[-1].name:
                raise LoweringError(f"the model output must be computed by its last layer; flow lowers {SUPPORTED}")
            continue
        if node.op == "placeholder":
            if source:
                raise LoweringError(f"input '{node.name}' is a second model input; flow lowers single-input models")
            source[node] = INPUT
            value = node.meta.get("val")
            input_features = int(value[0].numel()) if value is not None and value.dim() >= 1 else 0
            continue
        if node.op != "call_function":
            raise _unsupported(node, model)
        name = op_name(node)
        path = owner(node)
        if name in ("add", "cat"):
            operands = _tensor_args(node, model)
            _check_join(node, operands, model)
            inputs = [feeding(node, arg) for arg in operands]
            kind = "add" if name == "add" else "concat"
            while len(inputs) > 2:  # cat of many: a left fold of pairwise concatenations
                pair = FloatLayer(kind, name_of(f"{path}.{node.name}" if path else node.name, node),
                                  (inputs[0], inputs[1]))
                layers.append(pair)
                by_name[pair.name] = pair
                inputs = [pair.name, *inputs[2:]]
            add(FloatLayer(kind, name_of(f"{path}.{node.name}" if path else node.name, node), tuple(inputs),
                           features=_features(node)), node)
            continue
        if not node.args:
            raise _unsupported(node, model)
        previous = feeding(node, node.args[0])
        if name in ("dropout", "native_dropout", "feature_dropout"):
            if len(node.args) > 2 and node.args[2]:  # dropout(input, p, train): train-mode dropout is random
                raise _unsupported(node, model, "train-mode dropout (capture the model in eval mode)")
            source[node] = previous
        elif name in WIRING_OPS:
            if name in ("view", "reshape", "_unsafe_view", "flatten") and node.meta.get("val") is not None:
                if node.meta["val"].dim() != 2:
                    raise _unsupported(node, model, "reshape to a non-vector shape")
            source[node] = previous
        elif name == "linear":
            module = model.get_submodule(path)
            if not isinstance(module, nn.Linear):
                raise _unsupported(node, model, "linear outside an nn.Linear module")
            add(FloatLayer("linear", name_of(path, node), (previous,), copy.deepcopy(module),
                           features=module.out_features), node)
        elif name == "batch_norm" or name == "_native_batch_norm_legit_no_training":
            module = model.get_submodule(path)
            before = by_name.get(previous)
            if not (isinstance(module, nn.BatchNorm1d) and before is not None and before.kind == "linear"
                    and sum(previous in layer.inputs for layer in layers) == 0):
                raise _unsupported(node, model, "batch norm not directly after a Linear:")
            before.linear = fold_batchnorm(before.linear, module)
            source[node] = previous
        elif name in ("relu", "leaky_relu"):
            shift = _slope_shift(node, model) if name == "leaky_relu" else 0
            add(FloatLayer(name, name_of(path, node), (previous,), shift=shift, features=_features(node)), node)
        else:
            raise _unsupported(node, model)
    if not any(layer.kind == "linear" for layer in layers):
        raise LoweringError(f"the model has no Linear layer; flow lowers {SUPPORTED}")
    for layer in layers[:-1]:
        if not any(layer.name in other.inputs for other in layers):
            raise LoweringError(f"layer '{layer.name}' feeds nothing; flow lowers models with one output")
    return FloatGraph(layers, input_features)
