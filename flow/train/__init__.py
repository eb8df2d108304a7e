"""Training and evaluation loop shared by every lab: seeds, AdamW + linear decay, progress, checkpoints."""

from flow.train.checkpoint import load_checkpoint, save_checkpoint
from flow.train.loop import EvalResult, TrainConfig, TrainResult, evaluate, set_seed, train

__all__ = ["EvalResult", "TrainConfig", "TrainResult", "evaluate", "load_checkpoint", "save_checkpoint",
           "set_seed", "train"]
