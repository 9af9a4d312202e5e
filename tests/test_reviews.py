import pytest

from kexue.corpora.reviews import normalise, prepare_reviews


def _write(tmp_path, neg, pos):
    (tmp_path / "neg.txt").write_text("\n".join(neg) + "\n", encoding="utf-8")
    (tmp_path / "pos.txt").write_text("\n".join(pos) + "\n", encoding="utf-8")
    return tmp_path


def test_normalise_full_width_case_and_spaces():
    assert normalise("  ＡＢＣ，好  书 ") == "abc,好 书"


def test_dedup_conflicts_and_tail_test_split(tmp_path):
    neg = [f"差{i}" for i in range(10)] + ["差0", "两可", "", "  差1  "]
    pos = [f"好{i}" for i in range(10)] + ["两可", "ＨＡＯ", "hao"]
    split = prepare_reviews(_write(tmp_path, neg, pos), test_fraction=0.2, valid_fraction=0.25, seed=1)
    counts = split.counts
    assert counts["conflicting_texts_dropped"] == 1  # "两可" carries both labels
    assert counts["files"]["neg.txt"] == {"lines": 14, "empty": 1, "distinct": 11, "repeats_dropped": 2}
    assert counts["files"]["pos.txt"]["distinct"] == 12  # "ＨＡＯ" and "hao" normalise to one text
    texts = {name: [r["text"] for r in getattr(split, name)] for name in ("train", "valid", "test")}
    all_texts = sum(texts.values(), [])
    assert len(all_texts) == len(set(all_texts)) == counts["kept_texts"] == 21
    assert counts["distinct_texts"] == 22
    assert "两可" not in all_texts
    # test = the last 20% of each file's distinct texts, in file order
    assert [r["text"] for r in split.test if r["label"] == 0] == ["差8", "差9"]
    assert [r["text"] for r in split.test if r["label"] == 1] == ["好9", "hao"]
    assert counts["splits"]["valid"]["total"] == 4  # 25% of the 8 + 9 remaining, rounded per label
    assert counts["splits"]["train"]["total"] + counts["splits"]["valid"]["total"] == 17


def test_same_seed_same_split_other_seed_other_valid(tmp_path):
    raw = _write(tmp_path, [f"差{i}" for i in range(50)], [f"好{i}" for i in range(50)])
    a, b, c = (prepare_reviews(raw, seed=s) for s in (3, 3, 4))
    assert a.valid == b.valid and a.train == b.train
    assert a.test == c.test and a.valid != c.valid


def test_missing_file_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="acquire"):
        prepare_reviews(tmp_path)


def test_real_corpus_counts_and_no_leak(raw_reviews):
    split = prepare_reviews(raw_reviews, seed=0)
    counts = split.counts
    assert counts["files"]["neg.txt"]["lines"] == 18576
    assert counts["files"]["pos.txt"]["lines"] == 16548
    assert 40 <= counts["conflicting_texts_dropped"] <= 60  # DESIGN.md: 47 before normalisation
    seen = {}
    for name in ("train", "valid", "test"):
        for row in getattr(split, name):
            assert row["text"] not in seen, f"{row['text'][:20]} in {seen.get(row['text'])} and {name}"
            seen[row["text"]] = name
    total = sum(counts["splits"][s]["total"] for s in ("train", "valid", "test"))
    assert total == counts["kept_texts"] == counts["distinct_texts"] - counts["conflicting_texts_dropped"]
    assert abs(counts["splits"]["test"]["total"] / total - 0.2) < 0.01


def test_limit_spreads_over_the_file(raw_reviews):
    split = prepare_reviews(raw_reviews, limit_per_label=100)
    lines = sorted(r["line"] for r in split.train + split.valid + split.test if r["label"] == 0)
    assert len(lines) == 100 and lines[0] == 0 and lines[-1] > 18000
