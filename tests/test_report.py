import re
from pathlib import Path

import pytest

from kexue.io import write_json
from kexue.report import END, START, render, results_table, update_readme

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


def test_validation_table_lists_each_choice_and_sweep(tmp_path):
    import json

    from kexue.report import validation_table

    agreement = {"kendall_tau": 0.5, "mean_abs_gap": 0.02}
    (tmp_path / "validation.json").write_text(json.dumps({"reviews": {
        "discriminator_auc": 0.9, "random": {"sweep_unweighted": agreement,
                                             "sentiment_model": {"valid": 0.8, "test": 0.7, "gap": 0.1}},
        "adversarial": {"sweep_unweighted": {**agreement, "kendall_tau": 0.75}}}}))
    table = validation_table(tmp_path)
    assert "| reviews (AUC 0.900) | random | unweighted | 0.5000 | 0.0200 | 0.8000 / 0.7000 / 0.1000 |" in table
    assert "| adversarial | unweighted | 0.7500 | 0.0200 | — |" in table
    assert validation_table(tmp_path / "missing") == ""


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
