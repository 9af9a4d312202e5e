import json
import re
from pathlib import Path

import pytest

from kexue.io import write_json
from kexue.report import (
    END,
    START,
    TIMINGS_END,
    TIMINGS_START,
    render,
    results_table,
    timings_section,
    update_readme,
)

ROOT = Path(__file__).resolve().parents[1]


def test_table_rows_from_metrics(tmp_path):
    write_json(tmp_path / "fam.json", {
        "test": {"accuracy": 0.9, "examples": 10, "confusion": {"matrix": [[1]]}},
        "valid": {"accuracy": 0.8},
        "peers": {"peer_a": {"test": {"accuracy": 0.85}}},
        "cost": {"train_seconds": 12.5},
    })
    write_json(tmp_path / "fam_data.json", {"splits": {"test": {"total": 10, "neg": 4, "pos": 6}}})
    table = results_table(tmp_path)
    assert "| fam | accuracy | 0.9000 | peer_a 0.8500 | 12.5 |" in table
    assert "examples" not in table and "confusion" not in table
    assert "| fam | test | 10 | 4 | 6 |" in render(tmp_path)
    write_json(tmp_path / "pd_data.json", {"splits": {"test": {"lines": 3, "entities": {"PER": 2}}}})
    assert "| corpus | split | lines | entities PER |" in render(tmp_path)
    assert "| pd | test | 3 | 2 |" in render(tmp_path)


def test_update_readme_replaces_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\noutro\n")
    assert update_readme(readme, "new\n")
    assert readme.read_text() == f"intro\n{START}\nnew\n{END}\noutro\n"
    assert not update_readme(readme, "new\n")
    (tmp_path / "bad.md").write_text("no markers")
    with pytest.raises(ValueError, match="results:start"):
        update_readme(tmp_path / "bad.md", "x")


def test_committed_readme_table_matches_committed_metrics():
    """The README's results are generated from metrics/*.json, never typed by hand."""
    if not list((ROOT / "metrics").glob("*.json")):
        pytest.skip("no committed metrics yet")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), text, re.S)
    assert block, "README has no results block"
    assert block.group(1) == render(ROOT / "metrics"), "run `make readme` after `dvc repro`"


def _agreement(**figures) -> dict:
    return {"models": 9, "kendall_tau": 0.5, "kendall_p": 0.06, "mean_gap": 0.02, "mean_abs_gap": 0.03,
            "picked_model": "char 1-3 C=16", "picked_index": 8, "picked_valid": 0.9,
            "picked_test": 0.85, "best_test_model": "char 1-2 C=1", "best_test": 0.86, "regret": 0.01,
            **figures}


def test_validation_table_lists_each_choice_and_sweep(tmp_path):
    from kexue.report import validation_notes, validation_table

    write_json(tmp_path / "validation.json", {
        "reviews": {
            "discriminator_auc": 0.9,
            "random": {"sweep_density_ratio": _agreement(mean_gap=-0.07, mean_abs_gap=0.07),
                       "sweep_unweighted": _agreement(picked_test=0.86, regret=0.0),
                       "sentiment_model": {"valid": 0.8, "test": 0.87, "gap": 0.07}},
            "adversarial": {"sweep_density_ratio": _agreement(kendall_tau=0.9, kendall_p=0.00002,
                                                              picked_model="char 1-2 C=1",
                                                              picked_test=0.81, regret=0.0),
                            "sweep_unweighted": _agreement(kendall_tau=None, kendall_p=None,
                                                           mean_gap=-0.02, picked_test=0.8),
                            "sentiment_model": {"valid": 0.86, "test": 0.85, "gap": 0.01}}},
        "people_daily": {"discriminator_auc": 0.8,
                         "random": {"sweep_unweighted": _agreement()},
                         "adversarial": {"sweep_unweighted": _agreement(kendall_tau=0.75, regret=0.02)}}})
    table = validation_table(tmp_path)
    assert table.splitlines()[0] == (
        "| corpus | validation | sweep | models | Kendall τ (p) | mean gap valid − test | mean abs gap | "
        "picked model | picked test | regret | sentiment model valid / test / gap |")
    rows = table.splitlines()[2:]
    assert rows[0] == ("| reviews (AUC 0.900) | random | density_ratio | 9 | 0.5000 (0.0600) | -0.0700 | "
                       "0.0700 | char 1-3 C=16 | 0.8500 | 0.0100 | 0.8000 / 0.8700 / 0.0700 |")
    assert rows[1] == ("| reviews (AUC 0.900) | adversarial | density_ratio | 9 | 0.9000 (<0.0001) | +0.0200 | "
                       "0.0300 | char 1-2 C=1 | 0.8100 | 0.0000 | 0.8600 / 0.8500 / 0.0100 |")
    assert "| adversarial | unweighted | 9 | — | -0.0200 |" in rows[3]
    assert rows[5].startswith("| people_daily (AUC 0.800) | adversarial | unweighted | 9 | 0.7500 (0.0600) |")
    assert rows[5].endswith("| 0.0100 | — |") is False and rows[5].endswith("| 0.0200 | — |")
    assert validation_table(tmp_path / "missing") == "" and validation_notes(tmp_path / "missing") == ""

    notes = {line.split("**")[1]: line for line in validation_notes(tmp_path).splitlines()}
    assert set(notes) == {"models", "Kendall τ (p)", "mean gap valid − test", "mean abs gap",
                          "picked model", "picked test", "regret", "sentiment model valid / test / gap"}
    assert notes["models"].endswith("9, the same for both validation sets in every sweep, so neither "
                                    "side has more to pick from.")
    assert notes["Kendall τ (p)"].endswith(
        "higher is better: of 3 sweeps, adversarial in 2 (reviews density_ratio, people_daily unweighted), "
        "random in none, tied in none, undefined in 1 (reviews unweighted).")
    assert notes["mean gap valid − test"].endswith(  # |−0.07| vs 0.02; 0.02 vs |−0.02|; 0.02 each
        "closer to 0 is better: of 3 sweeps, adversarial in 1 (reviews density_ratio), random in none, "
        "tied in 2 (reviews unweighted, people_daily unweighted).")
    assert notes["mean abs gap"].endswith(
        "of 3 sweeps, adversarial in 1 (reviews density_ratio), random in none, tied in 2 "
        "(reviews unweighted, people_daily unweighted).")
    assert notes["picked model"].endswith(
        "the same model in 2 of 3 sweeps (reviews unweighted, people_daily unweighted) and different "
        "ones in 1 (reviews density_ratio).")
    # the column where random validation comes out ahead is said as plainly as the others
    assert notes["picked test"].endswith(
        "higher is better: of 3 sweeps, adversarial in none, random in 2 (reviews density_ratio, "
        "reviews unweighted), tied in 1 (people_daily unweighted).")
    assert notes["regret"].endswith(
        "lower is better: of 3 sweeps, adversarial in 1 (reviews density_ratio), random in 2 "
        "(reviews unweighted, people_daily unweighted), tied in none.")
    assert notes["sentiment model valid / test / gap"].endswith(
        "the smaller gap is adversarial's (0.0100, against 0.0700 for random), the higher test score "
        "is random's (0.8700, against 0.8500 for adversarial).")
    text = render(tmp_path)
    assert text.index("| corpus | validation |") < text.index("- **models**") < text.index("- **regret**")


def test_metrics_without_the_new_columns_show_blanks_and_no_verdict(tmp_path):
    from kexue.report import validation_notes, validation_table

    old = {"kendall_tau": 0.5, "mean_abs_gap": 0.02}
    write_json(tmp_path / "validation.json", {"reviews": {
        "discriminator_auc": 0.9, "random": {"sweep_unweighted": old}, "adversarial": {"sweep_unweighted": old}}})
    row = validation_table(tmp_path).splitlines()[2]
    assert row.startswith("| reviews (AUC 0.900) | random | unweighted | — | 0.5000 (—) | — | 0.0200 | — |")
    notes = validation_notes(tmp_path)
    assert "predates the columns kendall_p, mean_gap, models, picked_model, picked_test, regret" in notes
    assert "better" not in notes


def test_small_values_keep_four_significant_digits():
    from kexue.report import _fmt

    assert _fmt(0.001869) == "0.001869"  # an FID floor: 4 decimals would print 0.0019
    assert _fmt(0.5) == "0.5000" and _fmt(0.0) == "0.0000" and _fmt(12) == "12"


def test_comparison_rows_lead_and_say_ahead_tied_or_behind(tmp_path):
    def block(delta, ci, higher=True):
        return {"metric": "accuracy", "higher_is_better": higher, "peer": "p",
                "test": {"kexue": 0.9, "peer": 0.9 - delta, "delta": delta, "ci95": ci, "n": 100},
                "valid": {"kexue": 0.9, "peer": 0.8, "delta": 0.1, "ci95": [0.05, 0.15], "n": 50}}
    write_json(tmp_path / "a.json", {"test": {"accuracy": 0.9}, "comparison": block(0.02, [0.01, 0.03])})
    write_json(tmp_path / "b.json", {"test": {"accuracy": 0.9}, "comparison": block(0.01, [-0.01, 0.03])})
    write_json(tmp_path / "c.json", {"test": {"accuracy": 0.9}, "comparison": block(0.02, [0.01, 0.03], False)})
    write_json(tmp_path / "d.json", {"test": {"accuracy": 0.9}})
    text = render(tmp_path)
    assert text.index("strongest peer") < text.index("| family | test metric |")
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()
            if line.startswith("| ") and "[" in line}
    assert "**ahead**" in rows["a"] and "tied" in rows["b"] and "**behind**" in rows["c"]
    assert "d" not in rows and "+0.0200 [+0.0100, +0.0300]" in rows["a"]


def test_timings_section_sums_the_stages_and_ranks_the_slowest(tmp_path):
    path = tmp_path / "timings.json"
    path.write_text(json.dumps({"machine": {"cpus": 2}, "stages": {
        "a": {"seconds": 3600.0, "load_1min": 2.5, "finished": "x"},
        "b": {"seconds": 30.0, "load_1min": 1.0, "finished": "y"},
        "c": {"seconds": 1800.0, "load_1min": 4.0, "finished": "z"}}}))
    text = timings_section(path, slowest=2)
    assert "each of the 3 timed stages: 5,430 s (1.5 h) on 2 cores" in text
    assert "load average when each ended 1.0–4.0" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "stage" not in line]
    assert rows == ["| a | 3,600 | 2.5 | x |", "| c | 1,800 | 4.0 | z |"]


def test_committed_readme_timings_match_the_committed_timings_file():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(re.escape(TIMINGS_START) + r"\n(.*?)" + re.escape(TIMINGS_END), text, re.S)
    assert block, "README.md has no timings block"
    assert block.group(1) == timings_section(ROOT / "reports/timings.json"), "run `make readme`"


def test_every_peer_rows_give_each_peer_and_metric_with_both_verdicts(tmp_path):
    def result(delta_test, ci_test, delta_valid, ci_valid):
        return {"test": {"kexue": 0.3, "peer": 0.3 - delta_test, "delta": delta_test, "ci95": ci_test, "n": 9},
                "valid": {"kexue": 0.4, "peer": 0.4 - delta_valid, "delta": delta_valid, "ci95": ci_valid, "n": 8}}
    write_json(tmp_path / "s.json", {"test": {"top1": 0.3}, "comparisons": {
        "resamples": 1000, "seed": 0,
        "top1": {"higher_is_better": True, "bm25": result(0.02, [0.01, 0.03], 0.01, [-0.01, 0.02])},
        "mrr": {"higher_is_better": True, "bm25": result(-0.02, [-0.03, -0.01], 0.03, [0.01, 0.05])}}})
    text = render(tmp_path)
    rows = [line for line in text.splitlines() if line.startswith("| s | ") and "[" in line]
    assert len(rows) == 2
    top1, mrr = rows
    assert "| top1 | bm25 |" in top1 and "+0.0200 [+0.0100, +0.0300] | **ahead** |" in top1
    assert "+0.0100 [-0.0100, +0.0200] | tied |" in top1
    assert "| mrr | bm25 |" in mrr and "| **behind** |" in mrr and mrr.rstrip(" |").endswith("**ahead** | 9")
    assert text.index("each of them") < text.index("| family | test metric |")
