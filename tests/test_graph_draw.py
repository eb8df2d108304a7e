"""Drawing: DOT text, SVG through graphviz when present, and the no-dot fallback (CI has no graphviz)."""

import importlib
import shutil

import pytest

from flow.graph import analyse, capture, draw, to_dot
from tests.bert_helpers import padded_batch, tiny_bert

draw_module = importlib.import_module("flow.graph.draw")  # the package re-exports the function of that name


@pytest.fixture(scope="module")
def graph():
    g = capture(tiny_bert(), padded_batch(), inputs=["input_ids", "attention_mask"])
    analyse(g)
    return g


def test_dot_text_has_nodes_edges_clusters_and_highlight(graph):
    text = to_dot(graph, highlight={"dropout": "#ff0000"})
    assert text.startswith("digraph G {") and text.rstrip().endswith("}")
    assert '"#ff0000"' in text and "penwidth=3" in text
    assert "subgraph cluster_" in text and "->" in text
    assert "get_attr" not in text  # parameters hidden by default
    assert text.count("dropout\\n") >= 1 or "dropout" in text


def test_without_dot_writes_dot_file_and_says_how_to_render(graph, tmp_path, monkeypatch):
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    res = draw(graph, tmp_path / "g")
    assert res.svg_path is None and res.dot_path.is_file()
    assert "dot -Tsvg" in res.message and str(res.dot_path) in res.message
    assert not (tmp_path / "g.svg").exists()


def test_explicit_no_dot(graph, tmp_path):
    res = draw(graph, tmp_path / "x.svg", dot=None)
    assert res.svg_path is None and res.dot_path == tmp_path / "x.dot"


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed")
def test_svg_with_dot(graph, tmp_path):
    res = draw(graph, tmp_path / "g")
    assert res.svg_path is not None and res.svg_path.read_text().lstrip().startswith(("<?xml", "<svg"))
