"""The design fuzzer in `make test`: every corpus design (each once failed) is replayed, and a
small seeded slice of fresh designs is drawn. `make fuzz-designs` runs the fuzzer for real."""
import json
from dataclasses import replace

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings

from flow.emit.vectors import read_rows, read_vectors, write_rows
from flow.simulation.rtl_model import RtlModel
from tests.fuzz.__main__ import CORPUS, features
from tests.fuzz.check import DesignFailure, check_design, emit
from tests.fuzz.spec import DesignSpec, LayerSpec
from tests.fuzz.strategies import attention_designs, designs

CORPUS_FILES = sorted(CORPUS.glob("*.json"))


@pytest.mark.sim
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.stem)
def test_corpus_design_passes(path):
    entry = json.loads(path.read_text())
    result = check_design(DesignSpec.from_json(entry["spec"]))
    assert result["mismatches"] == 0 and result["elements_compared"] > 0


def test_corpus_is_not_empty_and_entries_say_what_they_found():
    assert CORPUS_FILES, "tests/corpus/ should hold the designs the fuzzer has found failing"
    for path in CORPUS_FILES:
        found = json.loads(path.read_text())["found"]
        assert found["failure"] and found["designs_until_found"] >= 1


@pytest.mark.sim
@settings(max_examples=4, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(spec=designs())
def test_seeded_slice_of_random_designs(spec):
    result = check_design(spec)
    assert result["elements_compared"] >= spec.vectors * spec.layers[-1].out_features


@pytest.mark.sim
@settings(max_examples=3, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(spec=attention_designs())
def test_seeded_slice_of_random_attention_designs(spec):
    """Sequence designs with self-attention blocks (flow/ops/matmul.py): bit-exact, cycles as modelled."""
    assert spec.sequence > 1 and any(layer.join == "attention" for layer in spec.layers)
    assert DesignSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    result = check_design(spec)
    assert result["mismatches"] == 0
    assert result["elements_compared"] >= spec.vectors * spec.sequence * spec.streams()[-1][2]


UNSIGNED_RELU = DesignSpec(6, 2, (
    LayerSpec(4, (6, 2, True), (5, 3, True), (6, 2, True), (8, 2, False), activation="relu", out_par=2),
    LayerSpec(3, (8, 2, False), (4, 2, True), (4, 2, True), (6, 1, True), "floor", "wrap", out_par=3),
), vectors=12, seed=5)


def test_rtl_model_reads_the_emitted_design_and_agrees_with_the_reference(tmp_path):
    folder, hw = emit(UNSIGNED_RELU, tmp_path)
    vectors = json.loads((folder / "vectors" / "meta.json").read_text())
    model = RtlModel(folder / "rtl", vectors["top"])
    # The ReLU reads unsigned codes, so it is the identity: no stage, and codes with the top bit set
    # (which a ReLU reading them as signed would zero: the bug the independent checks found) pass on.
    assert [i.module for i in model.instances] == ["linear", "linear"]
    assert list(hw.elided) == ["act1"] and "unsigned" in hw.elided["act1"]
    assert "relu" not in (folder / "rtl" / "filelist.f").read_text()
    inputs = read_rows(folder / "vectors" / "inputs.txt").tolist()
    expected = hw.forward_codes(torch.tensor(inputs)).tolist()
    assert [model(row) for row in inputs] == expected
    hidden = hw.stages[0].forward_codes(torch.tensor(inputs))
    assert int((hidden >= 128).sum()) > 0
    report = json.loads((folder / "report.json").read_text())
    assert report["elided"] == dict(hw.elided)


def test_rtl_model_catches_a_wrong_unsigned_flag(tmp_path):
    # The second linear reads the unsigned hidden codes; flipping its input to signed (the old bug's
    # shape, now on the layer that reads them) must change what the RTL-derived model computes.
    folder, hw = emit(UNSIGNED_RELU, tmp_path)
    top = folder / "rtl" / "fuzz_top.sv"
    text = top.read_text()
    assert text.count(".IN_SIGNED(0)") >= 1
    top.write_text(text.replace(".IN_SIGNED(0)", ".IN_SIGNED(1)"))
    inputs = read_rows(folder / "vectors" / "inputs.txt").tolist()
    model = RtlModel(folder / "rtl", "fuzz_top")
    assert [model(row) for row in inputs] != hw.forward_codes(torch.tensor(inputs)).tolist()


def test_features_name_the_design_classes():
    found = features(UNSIGNED_RELU)
    assert {"relu on unsigned", "none on signed", "in unsigned", "rounding floor", "overflow wrap",
            "partly parallel layer", "depth 2"} <= set(found)


LOCKSTEP = DesignSpec(5, 5, (  # fc1's output and its input, both one beat: a lockstep concat; fc2 reads 8 at once
    LayerSpec(3, (6, 2, True), (5, 3, True), (6, 2, True), (7, 3, True), "half_even", "wrap", activation="relu",
              out_par=3, join="concat", join_out=(5, 1, True), multiplier="auto", pipeline_every=1),
    LayerSpec(2, (5, 1, True), (4, 2, True), (4, 2, True), (6, 1, False), out_par=2, multiplier="auto"),
), vectors=16, seed=3)


def test_features_count_a_lockstep_concat_and_the_shift_add_layer_reading_it():
    assert LOCKSTEP.streams() == [(5, 5, 8), (8, 8, 2)]  # fc2 reads the concat's one beat of 3 + 5
    assert {"lockstep concat (one beat of both inputs)", "shift-add layer reading a lockstep concat",
            "concat join with a cast"} <= set(features(LOCKSTEP))
    serial = DesignSpec(4, 2, (replace(LOCKSTEP.layers[0], out_features=2, out_par=2), LOCKSTEP.layers[1]))
    assert serial.streams() == [(4, 2, 6), (6, 2, 2)]  # input two per beat: beat-serial
    assert not {f for f in features(serial) if "lockstep" in f}


@pytest.mark.sim
def test_a_lockstep_concat_design_keeps_ii_1_and_passes_every_check():
    result = check_design(LOCKSTEP)
    assert result["stages"].count("ConcatStage") == 1 and result["stages"].count("LinearStage") == 2
    assert result["initiation_interval"] == 1 and result["mismatches"] == 0
    assert result["elements_compared"] >= LOCKSTEP.vectors * 2


def test_a_failure_names_every_broken_promise(tmp_path, monkeypatch):
    # a reference that is off by one on every output: the check must say the RTL-derived model is right
    import flow.design.compile as compile_module
    import tests.fuzz.check as check

    real = compile_module.write_design

    def wrong_reference(folder, hw, name, x_codes, labels, **kw):
        report = real(folder, hw, name, x_codes, labels, **kw)
        expected = folder / "vectors" / "expected.txt"
        write_rows(expected, read_rows(expected) ^ 1)
        return report

    monkeypatch.setattr(compile_module, "write_design", wrong_reference)
    with pytest.raises(DesignFailure) as failure:
        check.check_design(UNSIGNED_RELU)
    message = str(failure.value)
    assert "RTL elements differ from flow's reference" in message
    assert "flow's reference differs from the RTL" in message



MASKED = DesignSpec(6, 6, (  # fc1 then self-attention with the key mask on its scores; fc2 per token
    LayerSpec(4, (8, 4, True), (6, 4, True), (8, 4, True), (8, 4, True), out_par=2, join="attention",
              attention={"shift": 1, "qk_par": 2, "av_par": 4, "mm_in": (8, 4, True), "qk_out": (10, 4, True),
                         "av_out": (8, 4, True), "softmax_in": (10, 4, True), "softmax_out": (11, 8, False)}),
    LayerSpec(3, (8, 4, True), (6, 4, True), (8, 4, True), (10, 4, True), out_par=3),
), vectors=10, seed=4, sequence=4, mask=True)


def test_a_masked_spec_emits_a_two_input_design_whose_mask_is_read(tmp_path):
    """The fuzzer's key-mask draw: the spec round-trips (an unmasked spec's JSON has no mask key, so
    corpus keys hold), its masks are seeded real lengths, and the emitted design reads them."""
    assert DesignSpec.from_json(json.loads(json.dumps(MASKED.to_json()))) == MASKED
    assert "mask" not in replace(MASKED, mask=False).to_json()
    assert "attention key mask (second input)" in features(MASKED)
    folder, graph = emit(MASKED, tmp_path)
    assert graph.mask and any(type(s).__name__ == "KeyMaskStage" for s in graph.stages)
    vectors = read_vectors(folder / "vectors")
    assert vectors.masks.shape == (10, 4) and vectors.masks[0].tolist() == [1] * 4 and vectors.masks[1].tolist() == [
        1, 0, 0, 0]
    padded = (vectors.masks.min(dim=1).values == 0).tolist()
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    unmasked = [model(row, [1] * 4) for row in vectors.inputs.tolist()]
    differs = [u != e for u, e in zip(unmasked, vectors.expected.tolist())]
    assert any(padded) and all(not d for d, p in zip(differs, padded) if not p) and any(differs)


@pytest.mark.sim
def test_a_masked_attention_design_passes_every_check():
    result = check_design(MASKED)
    assert result["mismatches"] == 0 and "KeyMaskStage" in result["stages"]
