"""Generated LOGBOOK blocks: find them, regenerate them from results files, and find table rows
and figure captions with numbers outside them (a number with no file behind it)."""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flow.paths import REPO_ROOT

LOGBOOK = REPO_ROOT / "docs" / "LOGBOOK.md"
BLOCK = re.compile(r"<!-- (table|text|section): ([\w.-]+) -->\n(.*?)<!-- end -->\n", re.S)
#: Modules whose generators register themselves on import.
GENERATOR_MODULES = ("setup", "lab0", "lab1", "lab2", "lab3", "hardware", "integer_ops", "bert_rtl")
Generator = Callable[[Path], str]
REGISTRY: dict[str, Generator] = {}
#: Blocks whose results file does not exist yet: name -> what is missing. Their numbers are
#: reported by tests/test_logbook.py as an expected (strict) failure until the file is added.
PENDING: dict[str, str] = {}


def register(name: str) -> Callable[[Generator], Generator]:
    """Register ``fn(root) -> markdown`` as the generator of block ``name`` (root: the checkout)."""
    def wrap(fn: Generator) -> Generator:
        if name in REGISTRY:
            raise ValueError(f"LOGBOOK block {name!r} is registered twice; rename one")
        REGISTRY[name] = fn
        return fn
    return wrap


def _load_generators() -> None:
    for module in GENERATOR_MODULES:
        importlib.import_module(f"flow.labs.logbook.{module}")


@dataclass(frozen=True)
class Block:
    kind: str
    name: str
    body: str
    start: int
    end: int


def blocks(text: str) -> list[Block]:
    """Every generated block of ``text``, in order."""
    return [Block(m.group(1), m.group(2), m.group(3), m.start(), m.end()) for m in BLOCK.finditer(text)]


def generate(name: str, root: Path = REPO_ROOT) -> str:
    """The body of block ``name``, written by its generator from ``root``'s results files."""
    _load_generators()
    if name not in REGISTRY:
        raise ValueError(f"LOGBOOK block {name!r} has no generator; register one with "
                         f"@flow.labs.logbook.register({name!r}) in a module of GENERATOR_MODULES")
    body = REGISTRY[name](root)
    return body if body.endswith("\n") else body + "\n"


def render(text: str, root: Path = REPO_ROOT, skip: tuple[str, ...] = tuple(PENDING)) -> str:
    """``text`` with every block's body regenerated (blocks named in ``skip`` kept as they are)."""
    out, last = [], 0
    for block in blocks(text):
        body = block.body if block.name in skip else generate(block.name, root)
        out += [text[last:block.start], f"<!-- {block.kind}: {block.name} -->\n{body}<!-- end -->\n"]
        last = block.end
    return "".join(out) + text[last:]


def update(path: Path = LOGBOOK, names: tuple[str, ...] | None = None, root: Path = REPO_ROOT) -> list[str]:
    """Regenerate the blocks ``names`` (default: all but the pending ones) of the file at ``path`` in
    place; returns the names rewritten. A name with no block in the file is a one-line error."""
    text = path.read_text()
    present = [b.name for b in blocks(text)]
    missing = [n for n in names or () if n not in present]
    if missing:
        raise ValueError(f"{path.name} has no block {missing}; add <!-- section: NAME --> ... <!-- end --> around it")
    chosen = tuple(names) if names else tuple(n for n in present if n not in PENDING)
    path.write_text(render(text, root, skip=tuple(n for n in present if n not in chosen)))
    return list(chosen)


def stale_blocks(text: str, root: Path = REPO_ROOT) -> list[str]:
    """Names of the blocks (pending ones aside) whose body differs from what their generator writes."""
    return [b.name for b in blocks(text) if b.name not in PENDING and b.body != generate(b.name, root)]


def _outside_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside generated blocks and code fences."""
    spans = [(text.count("\n", 0, b.start), text.count("\n", 0, b.end)) for b in blocks(text)]
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced and not any(start < number <= end for start, end in spans):
            lines.append((number, line))
    return lines


def unchecked_numbers(text: str) -> list[str]:
    """Table rows and figure captions outside every generated block that hold a number (link
    targets aside): numbers no results file stands behind."""
    found = []
    for number, line in _outside_blocks(text):
        visible = re.sub(r"\]\([^)]*\)", "]", line)  # the link's target is a file name, not a figure
        captions = re.findall(r"!\[([^\]]*)\]", visible)
        if (line.lstrip().startswith("|") and re.search(r"\d", visible)) or any(re.search(r"\d", c) for c in captions):
            found.append(f"line {number}: {line.strip()[:100]}")
    return found
