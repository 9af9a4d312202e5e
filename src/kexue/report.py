"""The README's results table, generated from ``metrics/*.json`` (never typed by hand)."""

from __future__ import annotations

import re
from pathlib import Path

from kexue.io import atomic_write, read_json

START, END = "<!-- results:start -->", "<!-- results:end -->"
TIMINGS_START, TIMINGS_END = "<!-- timings:start -->", "<!-- timings:end -->"


def _fmt(value) -> str:
    """Floats to 4 decimals; below 0.01 (an FID floor), to 4 significant digits instead."""
    if isinstance(value, float):
        return f"{value:.4g}" if 0 < abs(value) < 0.01 else f"{value:.4f}"
    return str(value)


def results_table(metrics_dir: str | Path = "metrics") -> str:
    """One row per (family, test metric): kexue's value, each peer's value, train seconds."""
    lines = ["| family | test metric | kexue | peers | kexue train s |", "|---|---|---|---|---|"]
    for path in sorted(Path(metrics_dir).glob("*.json")):
        data = read_json(path)
        if not isinstance(data, dict) or "test" not in data:
            continue
        family = path.stem
        peers = data.get("peers", {})
        seconds = data.get("cost", {}).get("train_seconds", "")
        for metric, value in data["test"].items():
            if not isinstance(value, float):  # counts (examples, gold words) are not scores
                continue
            peer_cells = ", ".join(
                f"{name} {_fmt(result['test'][metric])}"
                for name, result in peers.items()
                if isinstance(result.get("test", {}).get(metric), int | float)
            )
            lines.append(f"| {family} | {metric} | {_fmt(value)} | {peer_cells or '—'} | {seconds} |")
    return "\n".join(lines) + "\n"


def comparison_table(metrics_dir: str | Path = "metrics") -> str:
    """One row per family with a ``comparison`` block: kexue and its strongest peer (chosen on
    valid) on test, the difference with its paired-bootstrap 95% interval, and the verdict — ahead
    or behind when the interval excludes 0, tied when it does not."""
    lines = ["| family | metric | kexue | strongest peer (on valid) | peer | Δ test [95% CI] | "
             "verdict | Δ valid [95% CI] | n test |", "|---|---|---|---|---|---|---|---|---|"]
    rows = 0
    for path in sorted(Path(metrics_dir).glob("*.json")):
        data = read_json(path)
        if not isinstance(data, dict):
            continue
        # "comparison_fid": the generative families' second comparison, beside bits/dim
        for key, label in (("comparison", path.stem), ("comparison_fid", f"{path.stem} (FID)")):
            block = data.get(key)
            if not block:
                continue
            test, valid = block["test"], block["valid"]
            low, high = test["ci95"]
            verdict = _verdict(test["ci95"], block.get("higher_is_better", True))
            lines.append(f"| {label} | {block['metric']} | {_fmt(test['kexue'])} | {block['peer']} | "
                         f"{_fmt(test['peer'])} | {test['delta']:+.4f} [{low:+.4f}, {high:+.4f}] | "
                         f"{verdict} | {valid['delta']:+.4f} [{valid['ci95'][0]:+.4f}, "
                         f"{valid['ci95'][1]:+.4f}] | {test['n']} |")
            rows += 1
    return "\n".join(lines) + "\n" if rows else ""


def _verdict(ci95: list, higher_is_better: bool) -> str:
    low, high = ci95
    sign = 1 if higher_is_better else -1
    return ("**ahead**" if sign * low > 0 and sign * high > 0 else
            "**behind**" if sign * low < 0 and sign * high < 0 else "tied")


def every_peer_table(metrics_dir: str | Path = "metrics") -> str:
    """One row per (family, target metric, peer) of the families with a ``comparisons`` block
    (:mod:`kexue.every_peer`): kexue against each peer, not only the strongest one."""
    lines = ["| family | metric | peer | kexue | peer value | Δ test [95% CI] | verdict | "
             "Δ valid [95% CI] | verdict on valid | n test |", "|---|---|---|---|---|---|---|---|---|---|"]
    rows = 0
    for path in sorted(Path(metrics_dir).glob("*.json")):
        data = read_json(path)
        block = data.get("comparisons") if isinstance(data, dict) else None
        if not block:
            continue
        for metric, peers in block.items():
            if not isinstance(peers, dict):  # resamples, seed
                continue
            higher = peers.get("higher_is_better", True)
            for peer, result in peers.items():
                if not isinstance(result, dict):
                    continue
                test, valid = result["test"], result["valid"]
                lines.append(
                    f"| {path.stem} | {metric} | {peer} | {_fmt(test['kexue'])} | {_fmt(test['peer'])} | "
                    f"{test['delta']:+.4f} [{test['ci95'][0]:+.4f}, {test['ci95'][1]:+.4f}] | "
                    f"{_verdict(test['ci95'], higher)} | {valid['delta']:+.4f} [{valid['ci95'][0]:+.4f}, "
                    f"{valid['ci95'][1]:+.4f}] | {_verdict(valid['ci95'], higher)} | {test['n']} |")
                rows += 1
    return "\n".join(lines) + "\n" if rows else ""


def _flat_counts(counts: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in counts.items():
        if isinstance(value, dict):
            out.update(_flat_counts(value, f"{prefix}{key} "))
        else:
            out[f"{prefix}{key}"] = value
    return out


def data_table(metrics_dir: str | Path = "metrics") -> str:
    """Split sizes of each prepared corpus (``metrics/*_data.json``), one table per corpus."""
    tables = []
    for path in sorted(Path(metrics_dir).glob("*_data.json")):
        splits = read_json(path).get("splits", {})
        if not splits:
            continue
        rows = {split: _flat_counts(counts) for split, counts in splits.items()}
        columns = list(next(iter(rows.values())))
        lines = ["| corpus | split | " + " | ".join(columns) + " |",
                 "|---|---|" + "---|" * len(columns)]
        corpus = path.stem.removesuffix("_data")
        for split, flat in rows.items():
            lines.append(f"| {corpus} | {split} | " + " | ".join(str(flat.get(c, "")) for c in columns) + " |")
        tables.append("\n".join(lines) + "\n")
    return "\n".join(tables)


VALIDATION_CHOICES = ("random", "adversarial")
# the sweep figures the validation table needs (written by the `compare_validation` stage)
VALIDATION_KEYS = ("models", "kendall_tau", "kendall_p", "mean_gap", "mean_abs_gap", "picked_model",
                   "picked_test", "regret")


def _validation_rows(metrics_dir: str | Path, missing_out: set | None = None
                     ) -> tuple[dict, list[tuple[str, str, dict]]]:
    """(the metrics, [(corpus, sweep, {choice: figures})]) of ``metrics/validation.json``; ({}, [])
    without it. Figures a run made before a column existed are None, their keys added to
    ``missing_out``."""
    path = Path(metrics_dir) / "validation.json"
    if not path.is_file():
        return {}, []
    data = read_json(path)
    rows = []
    for corpus, result in data.items():
        sweeps = [key for key in result[VALIDATION_CHOICES[0]] if key.startswith("sweep_")]
        for sweep in sweeps:
            figures = {choice: {k: result[choice][sweep].get(k) for k in VALIDATION_KEYS}
                       for choice in VALIDATION_CHOICES}
            if missing_out is not None:
                missing_out.update(k for c in VALIDATION_CHOICES for k in VALIDATION_KEYS
                                   if k not in result[c][sweep])
            rows.append((corpus, sweep.removeprefix("sweep_"), figures))
    return data, rows


def _p(value) -> str:
    return "—" if value is None else "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _num(value, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


def validation_table(metrics_dir: str | Path = "metrics") -> str:
    """Random vs adversarial validation (``metrics/validation.json``): per corpus, choice and sweep,
    the number of candidate models, Kendall τ (p) between their valid and test scores, the mean
    valid − test gap and mean |valid − test|, the model the validation set picks, its test score
    and its regret; and the sentiment model's valid / test / gap."""
    data, rows = _validation_rows(metrics_dir)
    if not rows:
        return ""
    lines = ["| corpus | validation | sweep | models | Kendall τ (p) | mean gap valid − test | "
             "mean abs gap | picked model | picked test | regret | sentiment model valid / test / gap |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for corpus, sweep, figures in rows:  # the two choices of a sweep on adjacent rows
        for choice in VALIDATION_CHOICES:
            f = figures[choice]
            model = data[corpus][choice].get("sentiment_model")
            cell = f"{model['valid']:.4f} / {model['test']:.4f} / {model['gap']:.4f}" if model else "—"
            tau = "—" if f["kendall_tau"] is None else f"{f['kendall_tau']:.4f} ({_p(f['kendall_p'])})"
            lines.append(f"| {corpus} (AUC {data[corpus]['discriminator_auc']:.3f}) | {choice} | {sweep} | "
                         f"{_num(f['models'], 'd')} | {tau} | {_num(f['mean_gap'], '+.4f')} | "
                         f"{_num(f['mean_abs_gap'])} | {f['picked_model'] or '—'} | "
                         f"{_num(f['picked_test'])} | {_num(f['regret'])} | {cell} |")
    return "\n".join(lines) + "\n"


def _tally(rows: list[tuple[str, str, dict]], key: str, better: str) -> str:
    """Which validation set is better on ``key`` in each sweep (``better``: higher, lower or
    closer to 0; equal stored values are a tie, an undefined value decides nothing), said for both
    sides, e.g. "of 3 sweeps, adversarial in 2 (…), random in 1 (…), tied in none"."""
    sign = {"higher": 1, "lower": -1, "closer to 0": -1}[better]
    wins: dict[str, list[str]] = {"random": [], "adversarial": [], "tied": [], "undefined": []}
    for corpus, sweep, figures in rows:
        a, r = figures["adversarial"][key], figures["random"][key]
        if a is None or r is None:
            wins["undefined"].append(f"{corpus} {sweep}")
            continue
        if better == "closer to 0":
            a, r = abs(a), abs(r)
        side = "tied" if a == r else "adversarial" if sign * (a - r) > 0 else "random"
        wins[side].append(f"{corpus} {sweep}")

    def said(side: str) -> str:
        return f"{len(wins[side])} ({', '.join(wins[side])})" if wins[side] else "none"

    text = (f"of {len(rows)} sweeps, adversarial in {said('adversarial')}, random in "
            f"{said('random')}, tied in {said('tied')}")
    return text + (f", undefined in {said('undefined')}" if wins["undefined"] else "")


def _sentiment_side(result: dict, key: str, sign: int) -> str:
    """Which choice's sentiment model is better on ``key`` (``sign`` 1: higher, -1: lower), with
    both figures."""
    r, a = (result[c]["sentiment_model"][key] for c in VALIDATION_CHOICES)
    if r == a:
        return f"tied ({r:.4f} each)"
    win, lose = (("adversarial", a), ("random", r)) if sign * (a - r) > 0 else (("random", r), ("adversarial", a))
    return f"{win[0]}'s ({win[1]:.4f}, against {lose[1]:.4f} for {lose[0]})"


def validation_notes(metrics_dir: str | Path = "metrics") -> str:
    """One sentence per column of ``validation_table``: what it shows and which validation set
    comes out better on it (both sides named, whichever wins)."""
    missing: set = set()
    data, rows = _validation_rows(metrics_dir, missing)
    if not rows:
        return ""
    if missing:  # a run older than these columns: say so rather than compare blanks
        return (f"The committed `validation.json` predates the columns {', '.join(sorted(missing))} "
                f"(shown as —): the `compare_validation` stage has not run since they were added, "
                f"so no column-by-column verdict is given.\n")
    same = [f"{c} {s}" for c, s, f in rows if f["random"]["picked_model"] == f["adversarial"]["picked_model"]]
    differ = [f"{c} {s}" for c, s, f in rows if f"{c} {s}" not in same]
    counts = sorted({f[choice]["models"] for _, _, f in rows for choice in VALIDATION_CHOICES})
    unequal = [f"{c} {s}" for c, s, f in rows if f["random"]["models"] != f["adversarial"]["models"]]
    notes = [
        f"**models**: the number of candidate models in the sweep (TF-IDF + LR, C × character n-gram "
        f"range): {' or '.join(map(str, counts))}, "
        + ("the same for both validation sets in every sweep, so neither side has more to pick from."
           if not unequal else f"not the same for both validation sets in {', '.join(unequal)}."),
        f"**Kendall τ (p)**: how alike the validation and the test scores rank the candidates "
        f"(scipy's `kendalltau`, τ-b: 1 = same order, 0 = unrelated; p against no association); "
        f"higher is better: {_tally(rows, 'kendall_tau', 'higher')}.",
        f"**mean gap valid − test**: how much the validation score overstates (+) or understates (−) "
        f"the test score on average over the candidates; closer to 0 is better: "
        f"{_tally(rows, 'mean_gap', 'closer to 0')}.",
        f"**mean abs gap**: the mean of |valid − test| over the candidates; lower is better: "
        f"{_tally(rows, 'mean_abs_gap', 'lower')}.",
        f"**picked model**: the candidate with the best validation score (ties go to the first in "
        f"the sweep's order), no better side: the two validation sets pick the same model in "
        f"{len(same)} of {len(rows)} sweeps{' (' + ', '.join(same) + ')' if same else ''} and "
        f"different ones in {len(differ)}{' (' + ', '.join(differ) + ')' if differ else ''}.",
        f"**picked test**: the test score of that pick, what selection on this validation set "
        f"would ship (each choice trains its candidates on the pool minus its own validation "
        f"set); higher is better: {_tally(rows, 'picked_test', 'higher')}.",
        f"**regret**: the best test score among the choice's own candidates minus the picked "
        f"model's (0 = it picked the test-best one); lower is better: "
        f"{_tally(rows, 'regret', 'lower')}.",
    ]
    for corpus in data:
        if all(data[corpus][c].get("sentiment_model") for c in VALIDATION_CHOICES):
            notes.append(f"**sentiment model valid / test / gap** ({corpus}): the `sentiment` "
                         f"family's model trained once on each choice's training set, its valid and "
                         f"test score and |valid − test|; the smaller gap is "
                         f"{_sentiment_side(data[corpus], 'gap', -1)}, the higher test score is "
                         f"{_sentiment_side(data[corpus], 'test', 1)}.")
    return "".join(f"- {note}\n" for note in notes)


def render(metrics_dir: str | Path = "metrics") -> str:
    comparison = comparison_table(metrics_dir)
    comparison = (f"Each family against its strongest peer (chosen on valid; paired bootstrap over "
                  f"the test items, 1,000 resamples; a verdict only where the interval excludes "
                  f"0; FID, which has no per-image terms, resamples the real images in pairs and each "
                  f"model's samples on their own; lower is better for bits/dim and FID):\n\n"
                  f"{comparison}" if comparison else "")
    every = every_peer_table(metrics_dir)
    if every:
        comparison += (f"\nWhere a family's target names several metrics and peers, kexue against "
                       f"each of them (same bootstrap; the verdicts on valid are the ones the "
                       f"targets are judged by):\n\n{every}")
    if comparison:
        comparison += "\nEvery metric, kexue and all peers:\n\n"
    validation = validation_table(metrics_dir)
    validation = (f"\nRandom vs adversarial validation sets (stage `compare_validation`; score: "
                  f"reviews accuracy, People's Daily tag-kind micro F1):\n\n{validation}\n"
                  f"{validation_notes(metrics_dir)}"
                  if validation else "")
    return (f"{comparison}{results_table(metrics_dir)}{validation}\nPrepared data (reviews after deduplication and "
            f"conflict removal; People's Daily split by date):\n\n"
            f"{data_table(metrics_dir)}")


def timings_section(timings_path: str | Path, slowest: int = 5) -> str:
    """Where the time goes, from the timings file ``python -m kexue.timings`` keeps: the sum of
    every stage's last measured wall time, the most expensive stages, and the load each ran beside
    (a stage run beside other work takes up to 3x longer, so the sum is an upper bound for a
    quiet machine, not a measurement of one)."""
    data = read_json(timings_path)
    stages = data["stages"]
    ranked = sorted(stages, key=lambda s: -stages[s]["seconds"])[:slowest]
    total = sum(s["seconds"] for s in stages.values())
    loads = [s["load_1min"] for s in stages.values() if s.get("load_1min") is not None]
    lines = [f"Sum of the last measured wall time of each of the {len(stages)} timed stages: "
             f"{total:,.0f} s ({total / 3600:.1f} h) on {data['machine']['cpus']} cores; 1-minute "
             f"load average when each ended {min(loads):.1f}–{max(loads):.1f}, a sample, not the "
             f"load over the stage (a run beside other work takes up to 3x longer). The "
             f"{len(ranked)} most expensive:", "",
             "| stage | seconds | load at the end | finished (UTC) |", "|---|---|---|---|"]
    for name in ranked:
        stage = stages[name]
        lines.append(f"| {name} | {stage['seconds']:,.0f} | {stage.get('load_1min', '—')} | "
                     f"{stage.get('finished', '—')} |")
    return "\n".join(lines) + "\n"


def update_readme(readme: str | Path, body: str, start: str = START, end: str = END) -> bool:
    """Replace the text between the ``start`` and ``end`` markers (the results block unless
    named); returns True if the file changed."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme}: no '{start}' ... '{end}' block to fill")
    new = pattern.sub(lambda _: f"{start}\n{body}{end}", text)
    if new == text:
        return False
    with atomic_write(readme) as handle:
        handle.write(new)
    return True
