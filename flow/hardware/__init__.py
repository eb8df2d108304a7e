"""Lowering to a hardware graph, SystemVerilog emission, test vectors, latency model."""
