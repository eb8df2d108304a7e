"""Turn lowered float layers into a quantized hardware graph using the config's per-layer
formats and parallelism, inserting casts where one layer's output format is not the next
layer's input format."""
from __future__ import annotations

from typing import Any

from flow.design.config import ConfigError, check_layer_names, layer_quant_config, layer_table
from flow.formats.base import Format
from flow.hardware.lower import FloatLayer
from flow.hardware.stages import ActivationStage, CastStage, HardwareGraph, LinearStage, Stage
from flow.nn import QuantLinear


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def parallelism(value: Any, features: int, key: str) -> int:
    """Resolve "full" or an integer; it must divide the feature count (checked before any RTL)."""
    par = features if value == "full" else value
    if isinstance(par, str) and par.isdigit():
        par = int(par)
    if not isinstance(par, int) or isinstance(par, bool) or par < 1:
        raise ConfigError(f"{key} must be 'full' or a positive integer, got {value!r}")
    if features % par:
        raise ConfigError(f"{key}={par} does not divide the layer's {features} features; "
                          f"choose one of {_divisors(features)}")
    return par


def build_hardware_graph(layers: list[FloatLayer], config: dict[str, Any]) -> HardwareGraph:
    """Quantized stages for the lowered layers, with formats and parallelism from ``config``."""
    check_layer_names(config, [layer.name for layer in layers if layer.kind == "linear"])
    stages: list[Stage] = []
    fmt: Format | None = None  # format of the stream entering the next stage
    par = 0  # elements per beat of that stream
    for layer in layers:
        if layer.kind == "linear":
            linear = layer.linear
            qtable = layer_table(config, "quantization", layer.name)
            qconfig = layer_quant_config(qtable, f"quantization.{layer.name}")
            try:
                qlayer = QuantLinear.from_float(linear, qconfig)
            except ValueError as error:
                raise ConfigError(f"layer {layer.name}: {error}") from None
            ptable = layer_table(config, "parallelism", layer.name)
            if ptable["in_par"] == "auto":
                in_par = parallelism("full" if fmt is None else par, linear.in_features,
                                     f"parallelism.{layer.name}.in_par")
            else:
                in_par = parallelism(ptable["in_par"], linear.in_features, f"parallelism.{layer.name}.in_par")
                if fmt is not None and in_par != par:
                    raise ConfigError(
                        f"parallelism.{layer.name}.in_par={in_par} but the previous layer sends {par} "
                        f"elements per beat; set it to {par} or 'auto' (or change the previous out_par)")
            out_par = parallelism(ptable["out_par"], linear.out_features, f"parallelism.{layer.name}.out_par")
            if fmt is not None and fmt != qconfig.data_in:
                stages.append(CastStage(f"{layer.name}_cast_in", fmt, qconfig.data_in, qconfig.rounding,
                                        qconfig.overflow, par, linear.in_features))
            stages.append(LinearStage(layer.name, qlayer, in_par, out_par))
            fmt, par = qconfig.data_out, out_par
        else:
            previous = stages[-1]
            rounding = previous.layer.config.rounding if isinstance(previous, LinearStage) else previous.rounding
            stages.append(ActivationStage(layer.name, layer.kind, fmt, par, previous.out_features,
                                          layer.shift, rounding))
    return HardwareGraph(stages)
