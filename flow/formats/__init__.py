"""Number formats: the single numeric truth shared by training, the exact reference and the RTL.

Importing the package registers every built-in format with :func:`flow.formats.base.register_format`:
fixed point (``fixed``, ``integer``), ``minifloat`` (and MASE's ``minifloat_ieee``,
``minifloat_denorm``), ``log``, the block formats ``block_fp`` (``mxint``), ``block_minifloat``
(``mxfp``) and ``block_log``, and ``binary`` and ``ternary``. Only fixed point has RTL components.
"""
from flow.formats.base import Format, Overflow, Rounding, format_from_table, format_names, register_format
from flow.formats.binary import BinaryFormat
from flow.formats.block_fixed import BlockFixedFormat, mxint8
from flow.formats.block_log import BlockLogFormat
from flow.formats.block_minifloat import BlockMinifloatFormat, mxfp
from flow.formats.fixed import FixedFormat
from flow.formats.log import LogFormat
from flow.formats.minifloat import OCP_MINIFLOATS, MinifloatFormat
from flow.formats.ternary import TernaryFormat

__all__ = ["OCP_MINIFLOATS", "BinaryFormat", "BlockFixedFormat", "BlockLogFormat", "BlockMinifloatFormat",
           "FixedFormat", "Format", "LogFormat", "MinifloatFormat", "Overflow", "Rounding", "TernaryFormat",
           "format_from_table", "format_names", "mxfp", "mxint8", "register_format"]
