"""Measure the design config's walk from `flow emit-rtl` to the SystemVerilog (issue 21).

    python -m benches.config_walk [--show]

Runs `flow emit-rtl --config configs/digits_mlp.toml` (training cached) under ``sys.setprofile``
and records every call from one file of ``flow/`` into another that carries the config: an
argument or closure variable that is the config the parser returned, a part of it (a nested
table, list or typed section), something holding it (a ``Design``, the report's fields), or a
table a config module's function returned (a merged layer table, a typed section). Calls inside
one file are not counted.

Printed: the files the config enters, in the order it first enters them (cli.py and the parser come
first); the re-entries, the calls into a file that comes earlier in that order than the calling
file (a file the config never entered counts as below every other); and the climb-backs, the
distinct (calling file, called file) pairs among them, i.e. how many places a lower step of the
walk calls back up into one it already passed. A per-layer loop calling back up counts once as a
climb-back and every time as a re-entry.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FLOW = str(ROOT / "flow") + "/"
CONFIG_MODULES = ("flow/config/load.py", "flow/config/schema.py")


def _parts(value: Any, seen: set[int]) -> None:
    """Mark ``value`` and every container or dataclass inside it as carrying the config."""
    if id(value) in seen or isinstance(value, str | int | float | bool | type(None)):
        return
    seen.add(id(value))
    if isinstance(value, dict):
        for item in value.values():
            _parts(item, seen)
    elif isinstance(value, list | tuple):
        for item in value:
            _parts(item, seen)
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            _parts(getattr(value, field.name), seen)
    elif hasattr(value, "items"):  # a read-only mapping
        for item in value.values():
            _parts(item, seen)


def _config_shaped(value: Any) -> bool:
    """What a config module hands out that is still the config: an untyped table (a dict) or a
    typed section; not the domain objects built from it (formats, quantization configs)."""
    kind = type(value)
    return isinstance(value, dict) or kind.__module__.startswith("flow.config.") or kind.__name__ == "LayerParallelism"


class Walk:
    """The calls that carry the config: (calling file, called file) edges, and the files in the
    order the config first enters them."""

    def __init__(self) -> None:
        self.tainted: set[int] = set()
        self.keep: list[Any] = []  # the tainted objects stay alive, so their ids stay theirs
        self.order: list[str] = ["flow/cli.py", "flow/config/load.py"]  # the parser runs first
        self.calls: list[tuple[str, str]] = []

    def taint(self, value: Any) -> None:
        self.keep.append(value)
        _parts(value, self.tainted)

    def _carries(self, value: Any) -> bool:
        """The value is (part of) the config, or holds it directly: an item of a dict, list or
        tuple, or an attribute (a ``Design`` holds its config)."""
        if value is None or isinstance(value, str | int | float | bool):
            return False
        if id(value) in self.tainted:
            return True
        items = (value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple)
                 else vars(value).values() if hasattr(value, "__dict__") and not isinstance(value, type) else ())
        try:
            return any(id(item) in self.tainted for item in items)
        except TypeError:
            return False

    @staticmethod
    def _name(frame: FrameType) -> str | None:
        path = frame.f_code.co_filename
        return path[len(str(ROOT)) + 1:] if path.startswith(FLOW) else None

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        name = self._name(frame)
        if name is None:
            return
        if event == "return" and name in CONFIG_MODULES and _config_shaped(arg):
            self.taint(arg)
        if event != "call":
            return
        code = frame.f_code  # the arguments and the closure's variables
        names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount] + code.co_freevars
        if not any(self._carries(frame.f_locals.get(a)) for a in names):
            return
        caller = frame.f_back  # the nearest calling frame in flow/ (dataclasses' generated code skipped)
        while caller is not None and self._name(caller) is None:
            caller = caller.f_back
        if caller is None or self._name(caller) == name:  # a call inside one file
            return
        self.calls.append((self._name(caller), name))
        if name not in self.order:
            self.order.append(name)


def measure(show: bool = False) -> dict[str, int]:
    """Run the emit under the profiler and count the walk's files, re-entries and climb-backs."""
    from flow import cli
    from flow.config import load as config_module

    walk = Walk()
    parse = config_module.load_config

    def tainting(*args, **kwargs):
        result = parse(*args, **kwargs)
        walk.taint(result)
        return result

    config_module.load_config = tainting
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sys.setprofile(walk)
            try:
                cli.main(["emit-rtl", "--config", str(ROOT / "configs" / "digits_mlp.toml"),
                          "--design.output_dir", tmp])
            finally:
                sys.setprofile(None)
    finally:
        config_module.load_config = parse
    rank = {name: index for index, name in enumerate(walk.order)}
    back = [(a, b) for a, b in walk.calls if rank[b] < rank.get(a, len(rank))]  # a caller the config never entered sits below
    edges = sorted(set(back))
    if show:
        print("files, in the order the config enters them:", " -> ".join(walk.order))
        for a, b in edges:
            print(f"  climb-back: {a} -> {b} ({back.count((a, b))} calls)")
    return {"files": len(walk.order), "reentries": len(back), "climb_backs": len(edges),
            "into_config": sum(1 for _, b in edges if b in CONFIG_MODULES)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print the walk and each climb-back")
    numbers = measure(parser.parse_args().show)
    print(f"config walk: {numbers['files']} files, {numbers['reentries']} re-entries, "
          f"{numbers['climb_backs']} climb-backs ({numbers['into_config']} into the config modules)")


if __name__ == "__main__":
    main()
