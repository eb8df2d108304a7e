"""Capture a model with `torch.export.export(..., strict=False)` for a user-chosen set of inputs.

The captured `torch.fx.GraphModule` is what runs; each node keeps `nn_module_stack`, so it maps
back to the module that owns it.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import fx, nn
from torch.export import Dim


def accepted_inputs(model: nn.Module) -> list[str]:
    """The keyword inputs `model.forward` takes by name (no *args/**kwargs)."""
    params = inspect.signature(model.forward).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


@dataclass
class Graph:
    """A captured model: the runnable graph module, the example inputs it was captured with, the source model."""

    module: fx.GraphModule
    inputs: dict[str, Any]
    model: nn.Module | None = None
    mode: Literal["train", "eval"] = "train"
    history: list[str] = field(default_factory=list)
    dynamic: bool = False
    edited: bool = False  # True once a node-level pass changed the graph (it then differs from `model`)

    @property
    def fx(self) -> fx.Graph:
        return self.module.graph

    @property
    def nodes(self) -> list[fx.Node]:
        return list(self.module.graph.nodes)

    @property
    def input_names(self) -> list[str]:
        return [n.target for n in self.module.graph.nodes if n.op == "placeholder"]

    def __call__(self, **inputs: Any) -> Any:
        return self.module(**inputs)

    def run(self, inputs: Mapping[str, Any] | None = None) -> Any:
        """Run the graph module on `inputs` (default: the capture's example inputs)."""
        return self.module(**dict(self.inputs if inputs is None else inputs))

    def recompile(self, note: str | None = None) -> Graph:
        """Check the edited graph, regenerate the module's code and record the pass in `history`."""
        self.module.graph.lint()
        self.module.recompile()
        self.edited = True
        if note:
            self.history.append(note)
        return self

    def recapture(self, note: str) -> Graph:
        """A fresh capture of `model` (after a module-level pass) with the same inputs, mode and shapes."""
        if self.model is None:
            raise ValueError(f"{note} needs the source model; capture the graph with flow.graph.capture(model, ...)")
        if self.edited:
            raise ValueError(f"{note} re-captures the model and would drop the node-level edits {self.history[1:]}; "
                             "apply module-level passes before node-level ones")
        g = capture(self.model, self.inputs, mode=self.mode, dynamic=self.dynamic)
        g.history = [*self.history, note]
        return g

    def copy(self) -> Graph:
        """An independent deep copy (graph, parameters and example inputs)."""
        with warnings.catch_warnings():  # torch's pytree LeafSpec deprecation noise on deepcopy
            warnings.simplefilter("ignore", FutureWarning)
            module = copy.deepcopy(self.module)
        return Graph(module, dict(self.inputs), self.model, self.mode, list(self.history), self.dynamic, self.edited)

    def node(self, name: str) -> fx.Node:
        for n in self.module.graph.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r} in the graph; see graph.nodes for the names")

    def input_dependencies(self, node: fx.Node) -> set[str]:
        """Names of the graph inputs (placeholders) that `node` depends on, through any path."""
        seen: set[fx.Node] = set()
        stack = [node]
        deps: set[str] = set()
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            if cur.op == "placeholder":
                deps.add(str(cur.target))
            stack.extend(cur.all_input_nodes)
        return deps


def owner(node: fx.Node) -> str:
    """Path of the innermost module that produced `node` ('' for top-level code, e.g. the loss)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return _clean_path(path)


def module_stack(node: fx.Node) -> list[tuple[str, str]]:
    """(path, class name) of every module enclosing `node`, outermost first."""
    out = []
    for path, cls in (node.meta.get("nn_module_stack") or {}).values():
        name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
        out.append((_clean_path(path), name.rsplit(".", 1)[-1]))
    return out


def _clean_path(path: str) -> str:
    # export writes e.g. "L['self'].bert.encoder.layer[0]" in some versions; normalise to dotted form
    path = path.replace("L['self'].", "").replace("L['self']", "")
    return path.replace("[", ".").replace("]", "").replace("'", "")


def capture(
    model: nn.Module,
    batch: Mapping[str, Any],
    inputs: Iterable[str] | None = None,
    mode: Literal["train", "eval"] = "train",
    dynamic: bool = False,
) -> Graph:
    """Export `model` with the chosen `inputs` taken from `batch` (default: every key of `batch`).

    An input name the model does not take, or one missing from `batch`, is a one-line ValueError.
    `mode` sets train/eval during capture (train keeps dropout active in the graph).
    `dynamic` marks batch and sequence dimensions dynamic so other shapes can run.
    """
    names = list(batch.keys()) if inputs is None else list(inputs)
    accepted = accepted_inputs(model)
    for name in names:
        if name not in accepted:
            raise ValueError(
                f"unknown model input {name!r}: {type(model).__name__}.forward accepts {', '.join(accepted)}"
            )
        if name not in batch:
            raise ValueError(f"input {name!r} is not in the example batch (it has {', '.join(batch)}); add it or drop it")
    if len(set(names)) != len(names):
        raise ValueError(f"input names repeat in {names}; name each input once")
    if mode not in ("train", "eval"):
        raise ValueError(f"mode {mode!r} must be 'train' or 'eval'")
    kwargs = {name: batch[name] for name in names}
    dyn = None
    if dynamic:
        dyn = {k: ({d: Dim.AUTO for d in range(v.dim())} if isinstance(v, torch.Tensor) else None) for k, v in kwargs.items()}
    was_training = model.training
    model.train(mode == "train")
    try:
        program = torch.export.export(model, args=(), kwargs=kwargs, dynamic_shapes=dyn, strict=False)
    finally:
        model.train(was_training)
    note = f"capture(inputs={names}, mode={mode}, dynamic={dynamic})"
    return Graph(program.module(), kwargs, model, mode, [note], dynamic)
