"""Command-line entry point `flow`."""
import sys


def main(argv: list[str] | None = None) -> int:
    print("flow: no commands yet", file=sys.stderr)
    return 1
