"""Optuna searches: spaces, samplers, storage, a resumable multi-worker runner and best-so-far plots.

The labs (flow.labs.lab2, flow.labs.lab3) and ``flow search`` build their objectives on these."""
from flow.search.runner import StudySpec, best_so_far, run_study
from flow.search.samplers import SAMPLERS, make_sampler
from flow.search.spaces import ArchitectureChoice, ArchitectureSpace, PrecisionSpace
from flow.search.storage import open_storage

__all__ = ["SAMPLERS", "ArchitectureChoice", "ArchitectureSpace", "PrecisionSpace", "StudySpec", "best_so_far",
           "make_sampler", "open_storage", "run_study"]
