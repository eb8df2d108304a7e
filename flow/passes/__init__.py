"""Model and graph transforms; each graph pass is `graph, info = some_pass(graph, args)`, each
module pass (quantize, prune) changes an nn.Module in place and returns a report."""
from flow.passes.prune import (
    PruneReport,
    make_permanent,
    prune_module,
    remove_activation_pruning,
    sparsity_report,
)
from flow.passes.quantize import QuantizeConfigError, QuantizeReport, dequantize_module, quantize_module

__all__ = ["PruneReport", "QuantizeConfigError", "QuantizeReport", "dequantize_module", "make_permanent",
           "prune_module", "quantize_module", "remove_activation_pruning", "sparsity_report"]
