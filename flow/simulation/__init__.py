"""Simulation: flow sim (simulate), its Verilator engines (verilator: cocotb; bulk_engine: one
binary for the whole vector set), stimulus helpers, and the RTL-derived reference model."""
