"""The LOGBOOK's numbers come from results files: generated blocks, a registry of their
generators, and the check that no table or figure caption holds a number outside them.

A block is ``<!-- table: NAME -->`` (or ``text:``/``section:``) ... ``<!-- end -->`` in
docs/LOGBOOK.md; its body is what the generator registered as NAME writes from ``results/``.
``python -m flow.labs.logbook --write`` rewrites every block; ``--check`` lists stale blocks.
"""
from flow.labs.logbook.blocks import LOGBOOK, PENDING, REGISTRY, blocks, generate, register, render

__all__ = ["LOGBOOK", "PENDING", "REGISTRY", "blocks", "generate", "register", "render"]
