"""Resource estimation: Yosys synthesis (pyosys) and an analytical model."""
