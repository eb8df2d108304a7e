"""Search spaces: BERT architecture (lab 2) and per-layer precision (lab 3).

Each space validates itself on construction (an empty choice list, a head count that divides no
hidden size, an unknown format are one-line errors), proposes a configuration from an Optuna
trial (``suggest``), and lists its full grid for the grid sampler (``grid``).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

LINEAR, IDENTITY = "linear", "identity"
ATTENTION_ROLES = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")
FEED_FORWARD_ROLES = ("intermediate.dense", "output.dense")  # square only when intermediate == hidden
POOLER = "bert.pooler.dense"


def _choices(name: str, values: Sequence[Any]) -> tuple[Any, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"the search space is empty: {name} has no choices; give it at least one value")
    return values


@dataclass(frozen=True)
class ArchitectureChoice:
    """One proposed BERT shape and the square Linears (module paths) it turns into Identity."""

    num_hidden_layers: int
    num_attention_heads: int
    hidden_size: int
    intermediate_size: int
    identity: tuple[str, ...] = ()
    requested_heads: int | None = None  # set when the head count was reparameterized

    def config(self) -> dict[str, int]:
        return {"num_hidden_layers": self.num_hidden_layers, "num_attention_heads": self.num_attention_heads,
                "hidden_size": self.hidden_size, "intermediate_size": self.intermediate_size}


def square_linears(layers: int, hidden: int, intermediate: int) -> list[str]:
    """Module paths of the square nn.Linear layers of a BertForSequenceClassification of that shape."""
    roles = ATTENTION_ROLES + (FEED_FORWARD_ROLES if intermediate == hidden else ())
    return [f"bert.encoder.layer.{i}.{role}" for i in range(layers) for role in roles] + [POOLER]


@dataclass(frozen=True)
class ArchitectureSpace:
    """The reference's BERT space; head counts that do not divide a hidden size are reparameterized
    to the largest listed head count that does (smaller than the one drawn when possible)."""

    layers: tuple[int, ...] = (2, 4, 8)
    heads: tuple[int, ...] = (2, 4, 8, 16)
    hidden: tuple[int, ...] = (128, 192, 256, 384, 512)
    intermediate: tuple[int, ...] = (512, 768, 1024, 1536, 2048)
    identity_choices: bool = True

    def __post_init__(self) -> None:
        for name in ("layers", "heads", "hidden", "intermediate"):
            object.__setattr__(self, name, _choices(name, getattr(self, name)))
        useless = [h for h in self.heads if not any(size % h == 0 for size in self.hidden)]
        if useless:
            raise ValueError(f"head count(s) {useless} divide no hidden size in {list(self.hidden)}; drop them or "
                             f"add a hidden size they divide")
        bad = [h for h in self.hidden if not any(h % a == 0 for a in self.heads)]
        if bad:
            raise ValueError(f"hidden size(s) {bad} are divisible by no head count in {list(self.heads)}; drop them "
                             f"or add a head count that divides them")

    def heads_for(self, hidden: int, requested: int) -> int:
        """``requested`` if it divides ``hidden``, else the largest listed divisor below it, else the smallest above."""
        valid = [h for h in self.heads if hidden % h == 0]
        below = [h for h in valid if h <= requested]
        return max(below) if below else min(valid)

    def suggest(self, trial: optuna.Trial) -> ArchitectureChoice:
        layers = trial.suggest_categorical("num_hidden_layers", self.layers)
        hidden = trial.suggest_categorical("hidden_size", self.hidden)
        requested = trial.suggest_categorical("num_attention_heads", self.heads)
        intermediate = trial.suggest_categorical("intermediate_size", self.intermediate)
        heads = self.heads_for(hidden, requested)
        if heads != requested:
            trial.set_user_attr("heads_reparameterized", f"{requested}->{heads}")
        identity: list[str] = []
        if self.identity_choices:
            for path in square_linears(layers, hidden, intermediate):
                if trial.suggest_categorical(path, (LINEAR, IDENTITY)) == IDENTITY:
                    identity.append(path)
        return ArchitectureChoice(layers, heads, hidden, intermediate, tuple(identity),
                                  requested if heads != requested else None)

    def grid(self) -> dict[str, list[Any]]:
        """Every parameter ``suggest`` can draw, with its choices (square-Linear choices for the deepest model)."""
        grid: dict[str, list[Any]] = {"num_hidden_layers": list(self.layers), "hidden_size": list(self.hidden),
                                      "num_attention_heads": list(self.heads),
                                      "intermediate_size": list(self.intermediate)}
        if self.identity_choices:
            paths: dict[str, None] = {}
            for hidden, intermediate in itertools.product(self.hidden, self.intermediate):
                paths.update(dict.fromkeys(square_linears(max(self.layers), hidden, intermediate)))
            grid.update({path: [LINEAR, IDENTITY] for path in paths})
        return grid

    def size(self) -> int:
        return math.prod(len(choices) for choices in self.grid().values())


@dataclass(frozen=True)
class PrecisionSpace:
    """Per-Linear precision: each layer picks one of ``formats`` (name -> argument -> choices) or,
    when ``allow_full``, full precision. The arguments apply to the layer's input, weight and bias."""

    layers: tuple[str, ...]
    formats: Mapping[str, Mapping[str, Sequence[Any]]] = field(default_factory=dict)
    allow_full: bool = True

    def __post_init__(self) -> None:
        from flow.formats.base import format_names

        object.__setattr__(self, "layers", _choices("layers", self.layers))
        if not self.formats and not self.allow_full:
            raise ValueError("the search space is empty: no formats and no full precision; give at least one format")
        known = format_names()
        for name, args in self.formats.items():
            if name not in known:
                raise ValueError(f"unknown format {name!r} in the precision space; use one of {', '.join(known)}")
            for arg, choices in args.items():
                _choices(f"{name}.{arg}", choices)

    def options(self) -> list[str]:
        return list(self.formats) + (["full"] if self.allow_full else [])

    def suggest(self, trial: optuna.Trial) -> dict[str, dict[str, Any] | None]:
        """Layer path -> {"name": format, argument: value, ...}, or None for full precision."""
        chosen: dict[str, dict[str, Any] | None] = {}
        options = self.options()
        for layer in self.layers:
            name = options[0] if len(options) == 1 else trial.suggest_categorical(f"{layer}.format", options)
            if name == "full":
                chosen[layer] = None
                continue
            chosen[layer] = {"name": name, **{arg: trial.suggest_categorical(f"{layer}.{name}.{arg}", choices)
                                              for arg, choices in self.formats[name].items()}}
        return chosen
