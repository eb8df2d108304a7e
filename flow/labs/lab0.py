"""Lab 0 - the graph IR: (1) remove dropout nodes, wrong way then right way; (2) capture BERT
with and without `attention_mask`/`labels`, draw both graphs and diff them node by node.

`python -m flow.labs.lab0 --preset smoke|full` writes results/lab0/{dropout,inputs}.json and SVGs.
smoke: bert-tiny from config on synthetic token ids; full: pretrained if available, real IMDb reviews.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from flow.graph import Graph, analyse, capture, diff_graphs, draw, format_report, report
from flow.graph.analysis import record_values
from flow.graph.ops import op_kind
from flow.labs.common import check_preset, run_metadata, write_json
from flow.models.bert import build_bert
from flow.passes.dropout import count_dropout, dropout_nodes, remove_dropout, set_dropout_mode
from flow.paths import results_dir

RED, ORANGE, GREEN = "#ff6b6b", "#ffb347", "#90ee90"


def example_batch(preset: str, seed: int = 0, imdb_dir: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A padded batch of 4: synthetic ids (smoke) or IMDb test reviews with the lab tokenizer (full)."""
    gen = torch.Generator().manual_seed(seed)
    if preset == "smoke":
        ids = torch.randint(5, 30522, (4, 24), generator=gen)
        mask = torch.ones_like(ids)
        mask[1, 16:] = 0
        mask[3, 9:] = 0
        ids = ids.masked_fill(mask == 0, 0)
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 0, 1])}, {
            "data": "synthetic token ids (4 x 24, rows 1 and 3 padded)", "tokenizer": None}
    from flow.data.imdb import load_imdb
    from flow.data.loader import PadCollate, tokenize
    from flow.data.tokenizer import get_tokenizer

    imdb = load_imdb(path=imdb_dir)
    tok, tok_src = get_tokenizer("auto", train_texts=imdb.train.texts)
    ds = tokenize(imdb.test.subset(4, seed=seed), tok, max_length=64)
    batch = PadCollate(tok.pad_token_id)([ds[i] for i in range(len(ds))])
    if bool(batch["attention_mask"].all()):  # make sure padding exists, so the mask matters
        batch["attention_mask"][1, 40:] = 0
        batch["input_ids"][1, 40:] = tok.pad_token_id
    return batch, {"data": f"4 IMDb test reviews ({imdb.source}), max_length 64", "tokenizer": tok_src.as_dict()}


def _logits(out: Any) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out[0]


def task_dropout(model: torch.nn.Module, batch: dict[str, torch.Tensor], out: Path, do_draw: bool) -> dict[str, Any]:
    """Count, erase wrongly (error), erase rightly (redirect users first), compare eval outputs."""
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    g = capture(model, inputs, mode="train")
    analyse(g)
    _, before = count_dropout(g)

    wrong = g.copy()
    victim = dropout_nodes(wrong)[0]
    users = sorted(u.name for u in victim.users)
    try:
        wrong.fx.erase_node(victim)
        error = None
    except RuntimeError as exc:
        error = f"{type(exc).__name__}: {exc}"
    _, after_wrong = count_dropout(wrong)

    with torch.no_grad():
        train_a, train_b = _logits(g.run()), _logits(g.run())
        was = model.training
        model.eval()
        eager_eval = _logits(model(**inputs))
        model.train(was)

        as_eval = g.copy()
        set_dropout_mode(as_eval, {"train": False})
        eval_graph = _logits(as_eval.run())

        right = g.copy()
        _, removal = remove_dropout(right)
        _, after = count_dropout(right)
        right_a, right_b = _logits(right.run()), _logits(right.run())

    result = {
        "dropout_before": before["dropout_nodes"],
        "dropout_modules": [n["module"] for n in before["nodes"]],
        "attention_dropout_before": before["attention_dropout"],
        "wrong_way": {"node": victim.name, "users": users, "error": error,
                      "dropout_after_failed_erase": after_wrong["dropout_nodes"]},
        "right_way": {"removed": [r["name"] for r in removal["removed"]],
                      "attention_dropout_zeroed": removal["attention_dropout_zeroed"]},
        "dropout_after": after["dropout_nodes"],
        "attention_dropout_after": after["attention_dropout"],
        "train_graph_is_stochastic": not torch.equal(train_a, train_b),
        "after_removal_deterministic": torch.equal(right_a, right_b),
        "after_removal_equals_eager_eval": torch.equal(right_a, eager_eval),
        "after_removal_max_abs_diff_vs_eager_eval": float((right_a - eager_eval).abs().max()),
        "eval_mode_graph_equals_eager_eval": torch.equal(eval_graph, eager_eval),
        "graph_report": report(g),
        "graph_nodes_before": len(g.nodes),
        "graph_nodes_after": len(right.nodes),
        "history_after": right.history,
    }
    if do_draw:
        analyse(right)
        d1 = draw(g, out / "dropout_before", highlight={n.name: RED for n in dropout_nodes(g)},
                  title="bert-tiny, train mode: dropout nodes in red")
        d2 = draw(right, out / "dropout_after", title="bert-tiny after remove_dropout")
        result["drawings"] = [d1.message, d2.message]
    return result


def _mask_facts(g: Graph) -> list[dict[str, Any]]:
    """For each attention node: which inputs its mask depends on, its shape, whether it is all ones."""
    values = record_values(g)
    facts = []
    for n in g.nodes:
        if op_kind(n) != "attention":
            continue
        mask = n.args[3] if len(n.args) > 3 else n.kwargs.get("attn_mask")
        if mask is None:
            facts.append({"attention": n.name, "mask": None})
            continue
        value = values[mask]
        facts.append({
            "attention": n.name,
            "mask_node": mask.name,
            "depends_on_inputs": sorted(g.input_dependencies(mask)),
            "shape": list(value.shape),
            "dtype": str(value.dtype).replace("torch.", ""),
            "all_ones": bool(value.bool().all()),
        })
    return facts


def task_inputs(model: torch.nn.Module, batch: dict[str, torch.Tensor], out: Path, do_draw: bool) -> dict[str, Any]:
    """Capture with/without attention_mask and labels; diff node by node; draw both extremes."""
    variants = {
        "full": ["input_ids", "attention_mask", "labels"],
        "no_labels": ["input_ids", "attention_mask"],
        "no_mask": ["input_ids", "labels"],
        "ids_only": ["input_ids"],
    }
    graphs = {}
    for key, names in variants.items():
        graphs[key] = capture(model, batch, inputs=names, mode="eval")
        analyse(graphs[key])
    main = diff_graphs(graphs["full"], graphs["ids_only"])
    mask_effect = diff_graphs(graphs["no_labels"], graphs["ids_only"])
    label_effect = diff_graphs(graphs["no_mask"], graphs["ids_only"])
    with torch.no_grad():
        with_mask = _logits(graphs["full"].run())
        without_mask = _logits(graphs["ids_only"].run())
    padded = (batch["attention_mask"] == 0).any(dim=1)
    delta = (with_mask - without_mask).abs().amax(dim=1)
    result = {
        "variants": {k: {"inputs": v, "nodes": len(graphs[k].nodes)} for k, v in variants.items()},
        "diff_full_vs_ids_only": main.as_dict(),
        "diff_full_vs_ids_only_text": main.format("full", "ids_only"),
        "mask_effect": mask_effect.as_dict(),
        "label_effect": label_effect.as_dict(),
        "mask_facts": {"full": _mask_facts(graphs["full"]), "ids_only": _mask_facts(graphs["ids_only"])},
        "loss_nodes_full": [n.name for n in graphs["full"].nodes if op_kind(n) == "loss"],
        "loss_nodes_ids_only": [n.name for n in graphs["ids_only"].nodes if op_kind(n) == "loss"],
        "outputs_full": [o.name for o in graphs["full"].nodes[-1].all_input_nodes],
        "outputs_ids_only": [o.name for o in graphs["ids_only"].nodes[-1].all_input_nodes],
        "logits_max_abs_change_without_mask": {
            "padded_rows": float(delta[padded].max()) if padded.any() else None,
            "unpadded_rows": float(delta[~padded].max()) if (~padded).any() else None,
        },
    }
    if do_draw:
        only_full = {r.name: RED for r in main.only_a}
        rewired_a = {a: ORANGE for a, _, _, _ in main.rewired}
        rewired_b = {b: ORANGE for _, b, _, _ in main.rewired}
        d1 = draw(graphs["full"], out / "inputs_full", highlight={**rewired_a, **only_full},
                  title="inputs: input_ids, attention_mask, labels (red: absent without them; orange: rewired)")
        d2 = draw(graphs["ids_only"], out / "inputs_ids_only", highlight=rewired_b,
                  title="inputs: input_ids only (orange: rewired)")
        result["drawings"] = [d1.message, d2.message]
    return result


def run(preset: str = "smoke", out: str | Path | None = None, pretrained: str = "auto", seed: int = 0,
        imdb_dir: str | None = None, do_draw: bool = True) -> dict[str, dict[str, Any]]:
    """Run both tasks; write dropout.json and inputs.json under `out` (default results/lab0)."""
    check_preset(preset)
    folder = Path(out) if out is not None else results_dir("lab0")
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    want = {"auto": "auto", "yes": True, "no": False}[pretrained] if preset == "full" else False
    model, source = build_bert(pretrained=want, seed=seed)
    batch, data = example_batch(preset, seed, imdb_dir)
    common = {"preset": preset, "seed": seed, "model": source.as_dict(), **data, "meta": run_metadata()}
    t1 = time.perf_counter()
    dropout = task_dropout(model, batch, folder, do_draw)
    t2 = time.perf_counter()
    inputs = task_inputs(model, batch, folder, do_draw)
    t3 = time.perf_counter()
    dropout = {**common, **dropout, "seconds": round(t2 - t1, 2), "setup_seconds": round(t1 - t0, 2)}
    inputs = {**common, **inputs, "seconds": round(t3 - t2, 2)}
    write_json(folder / "dropout.json", dropout)
    write_json(folder / "inputs.json", inputs)
    return {"dropout": dropout, "inputs": inputs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.lab0", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=["smoke", "full"], default="smoke")
    ap.add_argument("--out", default=None, help="output folder (default results/lab0)")
    ap.add_argument("--pretrained", choices=["auto", "yes", "no"], default="auto",
                    help="full preset: load prajjwal1/bert-tiny (auto: when available); smoke always builds from config")
    ap.add_argument("--imdb-dir", default=None, help="local IMDb folder (else $FLOW_IMDB_DIR or ../shared/data/imdb)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-draw", action="store_true", help="skip the drawings")
    a = ap.parse_args(argv)
    t = time.perf_counter()
    try:
        res = run(a.preset, a.out, a.pretrained, a.seed, a.imdb_dir, not a.no_draw)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"lab0: {exc}", file=sys.stderr)
        return 2
    d, i = res["dropout"], res["inputs"]
    print(f"model: {d['model']['kind']} ({d['model']['name']}); data: {d['data']}")
    print("captured graph (train mode, inputs input_ids + attention_mask):\n" + format_report(d["graph_report"]))
    print(f"task 1: dropout nodes before {d['dropout_before']} (+{d['attention_dropout_before']} SDPA dropout_p), "
          f"after {d['dropout_after']}; eval outputs unchanged: {d['after_removal_equals_eager_eval']}")
    print(f"  wrong way: {d['wrong_way']['error']}")
    print("task 2: full vs ids_only\n" + i["diff_full_vs_ids_only_text"])
    for msg in d.get("drawings", []) + i.get("drawings", []):
        print(msg)
    print(f"lab0 done in {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
