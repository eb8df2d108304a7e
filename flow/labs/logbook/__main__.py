"""``python -m flow.labs.logbook --write`` regenerates docs/LOGBOOK.md's blocks from results/;
``--check`` lists stale blocks and unchecked numbers and exits 1 when there are any."""
from __future__ import annotations

import argparse
import sys

from flow.labs.logbook.blocks import LOGBOOK, PENDING, render, stale_blocks, unchecked_numbers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.logbook", description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite every block (pending ones aside) in place")
    ap.add_argument("--check", action="store_true", help="list stale blocks and unchecked numbers; exit 1 if any")
    a = ap.parse_args(argv)
    try:
        text = LOGBOOK.read_text()
        if a.write:
            LOGBOOK.write_text(render(text))
            text = LOGBOOK.read_text()
        problems = [f"stale block {name} (run --write)" for name in stale_blocks(text)]
        problems += [f"number outside any generated block, {line}" for line in unchecked_numbers(text)]
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"logbook: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    for name, missing in PENDING.items():
        print(f"pending block {name}: {missing}")
    return 1 if a.check and problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
