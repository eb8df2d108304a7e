"""One module per layer kind, each registered with :func:`flow.ops.base.register_op`; importing
the package registers them all. See flow/ops/base.py for what an op owns."""
# registration order: the order of the supported list in lowering errors
from flow.ops import linear, activation, batchnorm, add, concat, absolute, gelu, layer_norm, softmax, matmul, heads, tanh, select_token, cast, broadcast, fifo, wiring  # noqa: F401, E501, I001
from flow.ops.base import (
    INPUT,
    Build,
    FloatGraph,
    FloatLayer,
    InputStream,
    LayerParallelism,
    Lowering,
    LoweringError,
    Op,
    Stage,
    StreamInfo,
    lowering_rule,
    op_for,
    op_with_role,
    register_op,
    registered_ops,
    supported,
    table_kinds,
)

__all__ = ["INPUT", "Build", "FloatGraph", "FloatLayer", "InputStream", "LayerParallelism", "Lowering",
           "LoweringError", "Op", "Stage", "StreamInfo", "lowering_rule", "op_for", "op_with_role", "register_op",
           "registered_ops", "supported", "table_kinds"]
