"""Op kinds: a coarse class for each node (linear, attention, dropout, shape, mask, loss, ...).

Reports and drawings group by kind; passes find their targets by it.
"""

from __future__ import annotations

from torch import fx

_KINDS: dict[str, tuple[str, ...]] = {
    "linear": ("linear", "addmm", "mm", "bmm", "matmul"),
    "embedding": ("embedding",),
    "norm": ("layer_norm", "batch_norm", "group_norm"),
    "attention": ("scaled_dot_product_attention",),
    "activation": ("gelu", "relu", "tanh", "sigmoid", "silu", "softmax", "leaky_relu", "hardtanh"),
    "dropout": ("dropout", "native_dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"),
    "loss": ("cross_entropy_loss", "cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy"),
    "creation": ("ones", "new_ones", "zeros", "new_zeros", "full", "new_full", "arange", "empty", "ones_like", "zeros_like", "full_like"),
    "shape": ("view", "reshape", "transpose", "permute", "unsqueeze", "squeeze", "expand", "contiguous", "slice", "select", "flatten", "t", "clone"),
    "index": ("gather", "index", "index_select", "masked_fill", "where"),
    "compare": ("ge", "gt", "le", "lt", "eq", "ne", "__and__", "__or__", "logical_and", "logical_or", "logical_not"),
    "arith": ("add", "sub", "mul", "div", "neg", "rsqrt", "sqrt", "pow", "mean", "sum", "exp", "log"),
    "meta": ("to", "_guards_fn", "_assert_tensor_metadata", "_to_copy", "sym_size", "sym_constrain_range_for_size", "_assert_scalar", "getitem"),
}
_LOOKUP = {op: kind for kind, ops in _KINDS.items() for op in ops}


def op_name(node: fx.Node) -> str:
    """The bare op name of a call ('linear' for aten.linear.default)."""
    if node.op == "call_function":
        target = node.target
        name = getattr(target, "__name__", str(target))
        overload = getattr(target, "_overloadpacket", None)
        if overload is not None:
            name = overload.__name__
        return name.split(".")[0]
    if node.op in ("call_module", "call_method"):
        return str(node.target)
    return node.op


def op_kind(node: fx.Node) -> str:
    """The coarse kind of `node`: placeholder, output, param, or one of the call classes above ('other')."""
    if node.op == "placeholder":
        return "input"
    if node.op == "output":
        return "output"
    if node.op == "get_attr":
        return "param"
    return _LOOKUP.get(op_name(node), "other")
