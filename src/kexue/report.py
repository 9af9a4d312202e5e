"""The README's results table, generated from ``metrics/*.json`` (never typed by hand)."""

from __future__ import annotations

import re
from pathlib import Path

from kexue.io import atomic_write, read_json

START, END = "<!-- results:start -->", "<!-- results:end -->"


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
            sign = 1 if block.get("higher_is_better", True) else -1
            verdict = ("**ahead**" if sign * low > 0 and sign * high > 0 else
                       "**behind**" if sign * low < 0 and sign * high < 0 else "tied")
            lines.append(f"| {label} | {block['metric']} | {_fmt(test['kexue'])} | {block['peer']} | "
                         f"{_fmt(test['peer'])} | {test['delta']:+.4f} [{low:+.4f}, {high:+.4f}] | "
                         f"{verdict} | {valid['delta']:+.4f} [{valid['ci95'][0]:+.4f}, "
                         f"{valid['ci95'][1]:+.4f}] | {test['n']} |")
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


def validation_table(metrics_dir: str | Path = "metrics") -> str:
    """Random vs adversarial validation (``metrics/validation.json``): per corpus and choice, the
    sweep's Kendall τ and mean |valid − test| gap, and the sentiment model's gap."""
    path = Path(metrics_dir) / "validation.json"
    if not path.is_file():
        return ""
    lines = ["| corpus | validation | sweep | Kendall τ | mean gap | sentiment model valid / test / gap |",
             "|---|---|---|---|---|---|"]
    for corpus, result in read_json(path).items():
        for choice in ("random", "adversarial"):
            model = result[choice].get("sentiment_model")
            cell = f"{model['valid']:.4f} / {model['test']:.4f} / {model['gap']:.4f}" if model else "—"
            for sweep, agreement in result[choice].items():
                if sweep.startswith("sweep"):
                    lines.append(f"| {corpus} (AUC {result['discriminator_auc']:.3f}) | {choice} | "
                                 f"{sweep.removeprefix('sweep_')} | {agreement['kendall_tau']:.4f} | "
                                 f"{agreement['mean_abs_gap']:.4f} | {cell} |")
    return "\n".join(lines) + "\n"


def render(metrics_dir: str | Path = "metrics") -> str:
    comparison = comparison_table(metrics_dir)
    comparison = (f"Each family against its strongest peer (chosen on valid; paired bootstrap over "
                  f"the test items, 1,000 resamples; a verdict only where the interval excludes "
                  f"0; FID, which has no per-image terms, resamples the real images in pairs and each "
                  f"model's samples on their own; lower is better for bits/dim and FID):\n\n"
                  f"{comparison}\nEvery metric, kexue and all peers:\n\n"
                  if comparison else "")
    validation = validation_table(metrics_dir)
    validation = (f"\nRandom vs adversarial validation sets (stage `compare_validation`; score: "
                  f"reviews accuracy, People's Daily tag-kind micro F1):\n\n{validation}"
                  if validation else "")
    return (f"{comparison}{results_table(metrics_dir)}{validation}\nPrepared data (reviews after deduplication and "
            f"conflict removal; People's Daily split by date):\n\n"
            f"{data_table(metrics_dir)}")


def update_readme(readme: str | Path, body: str) -> bool:
    """Replace the text between the results markers; returns True if the file changed."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme}: no '{START}' ... '{END}' block to fill")
    new = pattern.sub(lambda _: f"{START}\n{body}{END}", text)
    if new == text:
        return False
    with atomic_write(readme) as handle:
        handle.write(new)
    return True
