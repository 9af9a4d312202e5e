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
    validation = validation_table(metrics_dir)
    validation = (f"\nRandom vs adversarial validation sets (stage `compare_validation`; score: "
                  f"reviews accuracy, People's Daily tag-kind micro F1):\n\n{validation}"
                  if validation else "")
    return (f"{results_table(metrics_dir)}{validation}\nPrepared data (reviews after deduplication and "
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
