"""Integer kernels of the transformer ops (exp, softmax, GELU, LayerNorm, roots).

Each kernel is the exact integer algorithm the RTL repeats step for step: int64 codes in, int64
codes out, every shift, product and division spelled out, and its error against float stated in
its module. The ops that put them in a design wrap them; the kernels know no stage or stream.
"""
from flow.arith.exp import ExpConstants, exp_constants, int_exp
from flow.arith.gelu import GeluConstants, gelu_constants, int_gelu
from flow.arith.layer_norm import LayerNormConstants, int_layer_norm, layer_norm_constants
from flow.arith.roots import isqrt_floor, reciprocal_floor
from flow.arith.softmax import int_softmax

__all__ = ["ExpConstants", "GeluConstants", "LayerNormConstants", "exp_constants", "gelu_constants", "int_exp",
           "int_gelu", "int_layer_norm", "int_softmax", "isqrt_floor", "layer_norm_constants", "reciprocal_floor"]
