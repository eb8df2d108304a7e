"""Subprocess entry: run Yosys commands from a file with pyosys, one per line.

Kept in its own process because pyosys prints a great deal and a long synthesis must be
killable by a timeout (see flow.estimate.yosys.run_yosys).
"""
import sys

from pyosys import libyosys as ys


def main(script_path: str) -> None:
    design = ys.Design()
    with open(script_path) as script:
        for line in script:
            command = line.strip()
            if command and not command.startswith("#"):
                ys.run_pass(command, design)


if __name__ == "__main__":
    main(sys.argv[1])
