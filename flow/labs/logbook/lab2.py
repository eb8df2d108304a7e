"""LOGBOOK blocks of lab 2 (architecture search), from results/lab2/ and its studies."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import optuna

from flow.labs.common import CHANCE
from flow.labs.lab2 import SAMPLER_ORDER, VARIANTS
from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, mean, span, study_times, table, thousands
from flow.labs.stats import binomial_halfwidth, separated
from flow.search import open_storage
from flow.search.spaces import square_linears

#: The commits whose trials ran on the H200 (flow.labs.fanout); their trials predate the device attribute.
GPU_COMMITS = ("0e9c9b4", "c14f80e")

# The full preset's run (tag full2: 500 steps per trial); the earlier 250-step run (budget `stored`
# of flow.labs.lab2_pilot) stays beside it, for the pilot's comparison.
SAMPLERS = "results/lab2/samplers_full2.json"
COMPRESS = "results/lab2/compress_full2.json"
STORED_SAMPLERS = "results/lab2/samplers_full.json"
STORED_COMPRESS = "results/lab2/compress_full.json"


def _tag(record: dict[str, Any]) -> str:
    """The tag naming the record's studies (records from before tags: the preset's name)."""
    return record.get("tag", record["preset"])


def _studies(record: dict[str, Any], key: str, group: str) -> list[dict[str, Any]]:
    return sorted((s for s in record["studies"].values() if s.get(key) == group), key=lambda s: s["seed"])


def _chance(studies: list[dict[str, Any]]) -> str:
    trials = sum(len(s["values"]) for s in studies)
    return f"{sum(s['at_chance'] for s in studies)} of {trials}"


def _row(label: str, studies: list[dict[str, Any]], bold: str = "") -> list[str]:
    tests = [s["test"] for s in studies]
    at = [span([s["curve"][n - 1] for s in studies]) for n in (10, 20)]
    return [label, *at, f"{', '.join(f'{t:.3f}' for t in tests)} (mean {mean(tests):.3f})", _chance(studies)]


def _header() -> list[str]:
    return ["curve", "best at trial 10: mean (min-max)", "best at trial 20: mean (min-max)",
            "test accuracy of each seed's best", f"trials at chance (<= {CHANCE})"]


def _caption(record: dict[str, Any], text: str, png: str) -> str:
    return f"![{text}; mean of {len(record['seeds'])} seeds with the min-max spread](../results/lab2/{png})\n"


def _storage(root: Path, record: dict[str, Any]) -> Any:
    """The Optuna storage a record names (a path relative to the checkout)."""
    return open_storage(root / record["storage"])


def _where(record: dict[str, Any]) -> str:
    device = record["meta"].get("device", "cpu")
    if device.startswith("cuda"):
        return (f"one {device[6:-1]} GPU shared by the {record['meta']['host_cpus']}-core machine's parallel "
                f"processes (`flow.labs.fanout`: one per study)")
    return "the CPU, one thread per study, two cores shared with other jobs"


def _trials(root: Path, record: dict[str, Any], name: str) -> list[optuna.trial.FrozenTrial]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=_storage(root, record))
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


@register("lab2.budget")
def budget(root: Path) -> str:
    s, c = load(root, SAMPLERS), load(root, COMPRESS)
    b = s["budget"]
    studies = [*s["studies"].values(), *c["studies"].values()]
    trials = sum(len(x["values"]) for x in studies)
    chance = sum(x["at_chance"] for x in studies)
    best = max(x["curve"][-1] for x in studies)
    return (f"**Budget per trial, the same for every curve:** BERT built from config and trained from scratch on "
            f"{thousands(b['train_samples'])} seeded training reviews cut to **{b['max_length']} tokens**, "
            f"{b['epochs']:g} epoch, AdamW lr {b['lr']:g} with {100 * b['warmup_ratio']:.0f} % warmup, batch "
            f"{b['batch_size']}; scored on {thousands(b['val_samples'])} held-out validation reviews (95 % binomial "
            f"interval about ±{100 * binomial_halfwidth(0.65, b['val_samples']):.1f} points at 0.65). Each study's best "
            f"model is tested on the whole {thousands(s['sizes']['test'])}-review test split.\n\n"
            f"**{chance} of {trials} trials ({100 * chance / trials:.1f} %) end at chance** (validation accuracy <= "
            f"{CHANCE}) over both tasks, and the best trial of all reaches {best:.3f}. The conclusions below are "
            f"about what trains in {b['train_samples'] * b['epochs'] // b['batch_size']:.0f} steps at "
            f"{b['max_length']} tokens, not about BERT on IMDb at full length (lab 1's bert-tiny reaches 0.81 at 128 "
            f"tokens with full training).\n")


@register("lab2.samplers.caption")
def samplers_caption(root: Path) -> str:
    return _caption(load(root, SAMPLERS), "best validation accuracy so far", Path(SAMPLERS).with_suffix(".png").name)


@register("lab2.samplers.time")
def samplers_time(root: Path) -> str:
    s = load(root, SAMPLERS)
    return (f"{len(s['studies'])} studies (random, grid, TPE x seeds {', '.join(map(str, s['seeds']))}), "
            f"{s['trials']} trials each, the budget above, run on {_where(s)}: "
            f"{study_times(list(s['studies'].values()))}. Results: `{SAMPLERS}`.\n")


@register("lab2.samplers")
def samplers(root: Path) -> str:
    s = load(root, SAMPLERS)
    return table(_header(), [_row(name, _studies(s, "sampler", name)) for name in SAMPLER_ORDER])


@register("lab2.samplers.reading")
def samplers_reading(root: Path) -> str:
    s = load(root, SAMPLERS)
    groups = {name: _studies(s, "sampler", name) for name in SAMPLER_ORDER}
    lines = []
    for n in (10, 20):
        ranges = {g: (min(x["curve"][n - 1] for x in st), max(x["curve"][n - 1] for x in st)) for g, st in groups.items()}
        means = {g: mean([x["curve"][n - 1] for x in st]) for g, st in groups.items()}
        lead = max(means, key=means.get)
        apart = [g for g in groups if g != lead and separated(ranges[lead], ranges[g])]
        verdict = (f"its seed range separates from {', '.join(apart)}'s" if apart else
                   "the seeds' ranges overlap, so the samplers are **indistinguishable**")
        lines.append(f"- **At trial {n} {lead} leads** on the mean ({means[lead]:.3f}; the others "
                     + ", ".join(f"{g} {means[g]:.3f}" for g in groups if g != lead) + f"), but {verdict}.")
    tests = {g: mean([x["test"] for x in st]) for g, st in groups.items()}
    lines.append(f"- **On the test split the means lie within {max(tests.values()) - min(tests.values()):.3f}** "
                 f"({min(tests.values()):.3f} to {max(tests.values()):.3f}); no sampler is better than another here.")
    return "\n".join(lines) + "\n"


@register("lab2.samplers.startup")
def samplers_startup(root: Path) -> str:
    s = load(root, SAMPLERS)
    random = {x["seed"]: x for x in _studies(s, "sampler", "random")}
    tpe = {x["seed"]: x for x in _studies(s, "sampler", "tpe")}
    seeds = sorted(set(random) & set(tpe))
    same = [k for k in seeds if random[k]["values"][:10] == tpe[k]["values"][:10]]

    def improved(group: dict[int, dict[str, Any]]) -> list[int]:
        return [k for k in seeds if group[k]["curve"][-1] > group[k]["curve"][9]]

    def listed(ks: list[int]) -> str:
        return f"{len(ks)} of {len(seeds)} seeds" + (f" ({', '.join(map(str, ks))})" if ks else "")

    return (f"- **Random and TPE are the same search up to trial 10** (identical first 10 values in "
            f"{len(same)} of {len(seeds)} seeds): Optuna's TPE draws its first 10 trials at random "
            f"(`n_startup_trials`) from the same seed as the random sampler.\n"
            f"  - After trial 10, TPE found a better model than its trial-10 best in {listed(improved(tpe))}, random "
            f"in {listed(improved(random))}.\n")


@register("lab2.winners")
def winners(root: Path) -> str:
    s = load(root, SAMPLERS)
    built = [x["best"]["attrs"]["built"] for x in s["studies"].values()]
    count = len(built)

    def tally(key: str) -> str:
        return ", ".join(f"{value} in {n}" for value, n in sorted(Counter(b[key] for b in built).items()))

    names = {"num_hidden_layers": "layers", "hidden_size": "hidden", "num_attention_heads": "heads",
             "intermediate_size": "intermediate", "identity": "Identity count"}
    shared = [f"{label} {value} in {n} of {count}" for key, label in names.items()
              for value, n in Counter(b[key] for b in built).items() if 3 * n >= 2 * count]
    space = s["space"]
    switches = max(len(square_linears(max(space["layers"]), h, h)) for h in space["hidden"]
                   if h in space["intermediate"]) if set(space["hidden"]) & set(space["intermediate"]) else None
    return (f"- **The {count} winners** (each study's best): layers {tally('num_hidden_layers')}; hidden "
            f"{tally('hidden_size')}; heads {tally('num_attention_heads')}; intermediate {tally('intermediate_size')}; "
            f"square Linears replaced by Identity {tally('identity')}. Shared by at least two thirds of them: "
            f"{', '.join(shared) or 'nothing'}.\n"
            f"- The space has 4 categorical sizes and up to {switches} Linear/Identity switches (4 layers with "
            f"intermediate = hidden, and the pooler); in {s['trials']} trials TPE's model of it gets "
            f"{s['trials'] - 10} points after its 10 random start-up trials.\n")


@register("lab2.compress.caption")
def compress_caption(root: Path) -> str:
    return _caption(load(root, COMPRESS), "best validation accuracy so far: no compression, compressed, compressed "
                                          "then retrained", Path(COMPRESS).with_suffix(".png").name)


def _params(storage: Any, name: str) -> list[dict[str, Any]]:
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return [t.params for t in sorted(trials, key=lambda t: t.number)]


@register("lab2.compress.pairing")
def compress_pairing(root: Path) -> str:
    c = load(root, COMPRESS)
    storage = _storage(root, c)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parts, paired = [], True
    for variant in VARIANTS:
        for study in _studies(c, "variant", variant):
            task1 = _params(storage, f"lab2-samplers-{c['sampler']}-seed{study['seed']}-{_tag(c)}")
            mine = _params(storage, f"lab2-compress-{variant}-{c['sampler']}-seed{study['seed']}-{_tag(c)}")
            same = sum(a == b for a, b in zip(task1, mine, strict=False))
            paired &= same == len(mine) == len(task1)
            parts.append(f"{variant} seed {study['seed']}: {same} of {len(mine)}")
    verdict = ("**every compression study ran exactly task 1's architectures of its seed, in the same order**: a "
               "paired comparison by construction (`enqueue` in `flow.search.StudySpec`)" if paired else
               "**not every study is paired**, so the curves compare different models where the counts fall short")
    return (f"The \"no compression\" curve is task 1's {c['sampler']} sampler on the same space, budget and seeds. "
            f"Trials that ran the same architecture as task 1's trial of the same number: {'; '.join(parts)}; "
            f"{verdict}.\n")


@register("lab2.compress.time")
def compress_time(root: Path) -> str:
    c = load(root, COMPRESS)
    parts = [f"{variant}: {study_times(_studies(c, 'variant', variant))}" for variant in VARIANTS]
    devices = Counter(t.user_attrs.get("device", "cuda (NVIDIA H200)" if t.user_attrs.get("commit") in GPU_COMMITS
                                       else "not recorded")
                      for name in c["studies"] for t in _trials(root, c, name))
    where = ", ".join(f"{n} on {device}" for device, n in sorted(devices.items()))
    return (f"Trials by device: {where} (the retraining studies finished on the CPU after the GPU lease ran out; a "
            f"trial's seconds are its own device's). Wall time: {'; '.join(parts)}.\n")


@register("lab2.compress")
def compress(root: Path) -> str:
    s, c = load(root, SAMPLERS), load(root, COMPRESS)
    rows = [_row(f"no compression (task 1, {c['sampler']})", _studies(s, "sampler", c["sampler"]))]
    rows += [_row(label, _studies(c, "variant", v)) for v, label in
             zip(VARIANTS, ("compressed, no retraining", "compressed, then retrained"), strict=True)]
    return table(_header(), rows)


@register("lab2.compress.sampler")
def compress_sampler(root: Path) -> str:
    s, c = load(root, SAMPLERS), load(root, COMPRESS)
    final = {name: info["final"] for name, info in s["comparison"].items()}
    chosen = c["sampler"]
    others = [name for name in final if name != chosen]
    apart = [name for name in others if separated((final[chosen]["min"], final[chosen]["max"]),
                                                  (final[name]["min"], final[name]["max"]))]
    verdict = (f"its seed range separates from {', '.join(apart)}'s" if apart else
               "though its seed range overlaps the others' (indistinguishable)")
    return (f"- **Task 2 uses {chosen}**, the best final mean ({final[chosen]['mean']:.3f}), {verdict}.\n")


@register("lab2.compress.verdict")
def compress_verdict(root: Path) -> str:
    s, c = load(root, SAMPLERS), load(root, COMPRESS)
    plain = _studies(s, "sampler", c["sampler"])
    lines = []
    for variant, label in zip(VARIANTS, ("without retraining", "with one retraining pass"), strict=True):
        mine = _studies(c, "variant", variant)
        a, b = [x["curve"][-1] for x in plain], [x["curve"][-1] for x in mine]
        ta, tb = mean([x["test"] for x in plain]), mean([x["test"] for x in mine])
        verdict = ("the seed ranges overlap: **indistinguishable**" if not separated((min(a), max(a)), (min(b), max(b)))
                   else "the seed ranges **separate**")
        lines.append(f"- **Compressed {label}:** best validation at trial 20 {mean(b):.3f} against {mean(a):.3f} "
                     f"without compression ({verdict}); test accuracy of the selected models {tb:.3f} against "
                     f"{ta:.3f}.")
    return "\n".join(lines) + "\n"


@register("lab2.compress.cost")
def compress_cost(root: Path) -> str:
    s, c = load(root, SAMPLERS), load(root, COMPRESS)
    plain, after = c["compression_cost"]["no-retrain"], c["compression_cost"]["retrain"]
    below = []
    for study in _studies(c, "variant", "no-retrain"):
        task1 = s["studies"][f"lab2-samplers-{c['sampler']}-seed{study['seed']}-{_tag(c)}"]["curve"]
        not_below = [i + 1 for i, (a, b) in enumerate(zip(study["curve"], task1, strict=True)) if a >= b]
        below.append(f"in seed {study['seed']} " + (f"at trials {', '.join(map(str, not_below))}" if not_below else
                                                   "at no trial"))
    return (f"- **Per trial, on the same model before and after compression** (fixed 8/4, l1 0.5, no retraining): "
            f"{plain['at_chance_before']} of {plain['trials']} trials were at chance before compression and have "
            f"nothing to lose. **Over the {plain['trained']} that trained, the median loss is "
            f"{plain['trained_median_loss']:.3f}** (mean {plain['trained_mean_loss']:.3f}); "
            f"{plain['trained_losing_over_0_05']} lose more than 0.05, the worst {plain['trained_worst_loss']:.3f}, "
            f"and **{plain['trained_to_chance']} collapse to chance**.\n"
            f"- **The compressed best-so-far curve is not below the uncompressed one everywhere:** it is level with or "
            f"above it {'; '.join(below)}.\n"
            f"- **With one retraining pass**, over the {after['trained']} trials that trained, the median change is a "
            f"gain of {-after['trained_median_loss']:.3f} (mean {-after['trained_mean_loss']:.3f}); "
            f"{after['trained_to_chance']} end at chance and {after['trained_losing_over_0_05']} lose more than 0.05. "
            f"That pass is also extra training for an under-trained model, so part of the gain is training, not "
            f"recovery.\n")


@register("lab2.compress.winners")
def compress_winners(root: Path) -> str:
    c = load(root, COMPRESS)
    lines = []
    for variant in VARIANTS:
        models = [f"seed {x['seed']}: {b['num_hidden_layers']} layers {b['hidden_size']} wide ({b['identity']} "
                  f"Identity, trial {x['best']['number']})" for x in _studies(c, "variant", variant)
                  for b in [x["best"]["attrs"]["built"]]]
        lines.append(f"{variant}: " + "; ".join(models))
    return "- **The winners.** " + ". ".join(lines) + ".\n"


@register("lab2.pilot")
def pilot(root: Path) -> str:
    r = load(root, "results/lab2/pilot.json")
    rows = []
    for name, entry in r["budgets"].items():
        b, s = entry["budget"], entry["summary"]
        steps = b["train_samples"] * b["epochs"] // b["batch_size"]
        rows.append([f"`{name}`", f"{thousands(b['train_samples'])} x {b['max_length']}", b["batch_size"],
                     f"{b['lr']:g}", f"{100 * b['warmup_ratio']:.0f} %", f"{steps:.0f}",
                     f"{s['at_chance']} of {s['trials']} ({100 * s['at_chance_fraction']:.0f} %)", f"{s['best_val']:.3f}",
                     f"{s['median_val']:.3f}", f"{s['median_seconds']:.0f}", f"{s['max_seconds']:.0f}",
                     f"{s['largest_seconds']:.0f}"])
    archs = r["architectures"]
    return (f"{len(archs)} architectures (the largest, {archs[0]['num_hidden_layers']} layers x "
            f"{archs[0]['hidden_size']} wide, intermediate {archs[0]['intermediate_size']}, no Identity, and "
            f"{len(archs) - 1} seeded random draws of the space), each trained once (seed {r['seed']}) under a "
            f"budget, one thread, on the 2 cores shared with synthesis jobs (so the seconds are upper bounds for 2 "
            f"idle cores); at chance: validation accuracy <= {r['chance']}.\n\n"
            + table(["budget", "reviews x tokens", "batch", "lr", "warmup", "steps", "at chance", "best val",
                     "median val", "median s", "max s", "largest s"], rows)
            + "\n" + _pilot_pairs(r, load(root, STORED_SAMPLERS), load(root, STORED_COMPRESS)))


def _pilot_pairs(r: dict[str, Any], samplers_record: dict[str, Any], compress_record: dict[str, Any]) -> str:
    """Trials at chance of each candidate against the stored budget, on the architectures both ran."""
    stored = {run["arch"]: run["val"] for run in r["budgets"]["stored"]["runs"]}
    studies = [*samplers_record["studies"].values(), *compress_record["studies"].values()]
    lines = [f"- The stored budget left {sum(v <= CHANCE for v in stored.values())} of these {len(stored)} "
             f"architectures at chance, but {sum(x['at_chance'] for x in studies)} of the studies' "
             f"{sum(len(x['values']) for x in studies)} trials: the pilot's sample is easier than the studies' trials, "
             f"so a count here is weaker evidence than it looks (one architecture is "
             f"{100 / len(stored):.0f} % of them)."]
    for name, entry in r["budgets"].items():
        pairs = [(stored[run["arch"]], run["val"]) for run in entry["runs"] if run["arch"] in stored]
        if name == "stored" or not pairs:
            continue
        better = sum(new > old for old, new in pairs)
        lines.append(f"- `{name}` against `stored` on the same {len(pairs)} architectures: "
                     f"{sum(new <= CHANCE for _, new in pairs)} at chance against "
                     f"{sum(old <= CHANCE for old, _ in pairs)}; higher validation accuracy on {better} of them.")
    return "\n".join(lines) + "\n"
