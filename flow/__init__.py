"""flow: a hardware-aware RTL generation toolflow for PyTorch models."""

__version__ = "0.1.0"
