"""Emission of a compiled design: the SystemVerilog top, package and ROMs (rtl), test vectors,
reports, and the design folder written atomically (design_folder)."""
