"""Sequence labelling (kexue.tagging) and the segment / ner families on small real cases."""

import json

import numpy as np
import pytest
from conftest import tiny_tagger_config

from kexue.batches import SequenceBatches
from kexue.comparison import attach, f1_metric
from kexue.config import parse
from kexue.corpora.people_daily import spans_from_bio
from kexue.families import ner, segment
from kexue.io import write_jsonl
from kexue.peers import dictionary
from kexue.peers import ner as ner_peers
from kexue.peers import segment as segment_peers
from kexue.spans import KINDS, entity_scores, span_counts
from kexue.tagger import Tagger
from kexue.tagging import build_model
from kexue.text.tagging_features import Features, pieces

CFG = tiny_tagger_config(maxlen=16, layers=2, epochs=25)

SENTENCES = [
    (["我们", "在", "北京", "工作", "。"], [[3, 5, "LOC"]]),
    (["张", "三", "去", "上海", "。"], [[0, 2, "PER"], [3, 5, "LOC"]]),
    (["新华社", "记者", "报道", "。"], [[0, 3, "ORG"]]),
]


TEXTS = ["".join(w) for w, _ in SENTENCES]


def _in_bfloat16(model_dir):
    """The trained segmenter reloaded with ``inference_dtype: bfloat16`` in its train_info."""
    info_path = model_dir / "train_info.json"
    info = json.loads(info_path.read_text())
    info["config"]["inference_dtype"] = "bfloat16"
    info_path.write_text(json.dumps(info))
    return segment.Segmenter(model_dir)


def _cfg(**overrides):
    return parse(segment.Config, {**CFG, **overrides}, "segment")


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pd")
    for split, repeat in (("train", 12), ("valid", 2), ("test", 2)):
        rows = [{"line": i, "text": "".join(w), "words": w, "pos": ["x"] * len(w), "entities": e}
                for i, (w, e) in enumerate(SENTENCES * repeat)]
        write_jsonl(root / f"{split}.jsonl", rows)
    return root


def test_pieces_cover_the_text_within_maxlen():
    text = "今天天气很好。我们去公园散步，然后回家吃饭，" + "很" * 40 + "！好？"
    cuts = pieces(text, 16)
    assert "".join(text[s:e] for s, e in cuts) == text
    assert all(0 < e - s <= 16 for s, e in cuts)
    assert (0, 7) in cuts  # a cut right after the first 。
    assert pieces("", 16) == []


def test_ragged_labels_are_padded_with_minus_one():
    batches = SequenceBatches([np.array([3, 4, 5]), np.array([6])], [np.array([1, 2, 3]), np.array([0])],
                              batch_size=2, shuffle=False)
    x, y = batches[0]
    assert x.shape == y.shape == (2, 3)
    assert y.tolist() == [[0, -1, -1], [1, 2, 3]]


@pytest.mark.parametrize("encoder", ["cnn", "bilstm"])
def test_a_sequence_scores_the_same_alone_and_padded_in_a_batch(encoder):
    cfg = _cfg(encoder=encoder)
    model = build_model(cfg, 4, 20, 30, "m")
    chars, pairs = np.array([[5, 6, 7]]), np.array([[8, 9, 10]])
    alone = model((chars, pairs), training=False).numpy()[0]
    batch_chars = np.array([[5, 6, 7, 0, 0], [1, 2, 3, 4, 5]])
    batch_pairs = np.array([[8, 9, 10, 0, 0], [11, 12, 13, 14, 15]])
    padded = model((batch_chars, batch_pairs), training=False).numpy()[0, :3]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_features_normalise_full_width_characters():
    feats = Features.build(["１９９８年"], _cfg())
    assert feats.encode("1998年")[0].tolist() == feats.encode("１９９８年")[0].tolist()
    assert 1 not in feats.encode("1998年")[0]  # no <unk>: the forms share ids


@pytest.fixture(scope="module")
def segmenter_dir(toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "model"
    info = segment.train(_cfg(), toy_data, out, None, None)
    assert info["epochs_run"] == 25 and info["train_chars"] > 0
    return out


def test_segmenter_learns_and_reproduces_its_training_words(segmenter_dir, toy_data):
    seg = segment.Segmenter(segmenter_dir)
    words = seg.cut(["".join(w) for w, _ in SENTENCES])
    assert words == [w for w, _ in SENTENCES]
    assert seg.cut(["我们 在北京"]) == [["我们", "在", "北京"]]  # whitespace separates and is dropped
    metrics, rows = segment.evaluate(segmenter_dir, toy_data)
    assert metrics["test"]["f1"] == 1.0 and metrics["test"]["oov_rate"] == 0.0
    assert metrics["cost"]["inference_chars_per_second"] > 0
    assert rows and set(rows[0]) == {"actual", "predicted"}


def test_softmax_head_trains_with_padded_labels_ignored(toy_data, tmp_path):
    segment.train(_cfg(head="softmax"), toy_data, tmp_path / "m", None, None)
    tagger = Tagger(tmp_path / "m")
    assert not tagger.crf
    assert segment.Segmenter(tmp_path / "m").cut(["新华社记者报道。"]) == [["新华社", "记者", "报道", "。"]]


def test_ner_learns_entities_and_scores_them(toy_data, tmp_path):
    ner.train(parse(ner.Config, CFG, "ner"), toy_data, tmp_path / "ner", None, None)
    rec = ner.Recognizer(tmp_path / "ner")
    assert rec.spans(["张三去上海。"]) == [[(0, 2, "PER"), (3, 5, "LOC")]]
    metrics, _ = ner.evaluate(tmp_path / "ner", toy_data)
    assert metrics["test"]["f1"] == 1.0 and metrics["test"]["per_type"]["ORG"]["gold"] == 2
    counts = metrics["items"]["test"]  # per line [right, predicted, gold], for the bootstrap
    assert [sum(c[i] for c in counts) for i in (0, 2)] == [metrics["test"]["entities"]] * 2


def test_max_match_takes_the_longest_vocabulary_word():
    vocab = {"研究", "研究生", "生命", "起源"}
    assert dictionary.max_match("研究生命起源", vocab, 3) == ["研究生", "命", "起源"]  # greedy's known flaw
    assert dictionary.max_match("", vocab, 3) == []


def test_entity_scores_on_a_hand_checked_case():
    gold = [[(0, 2, "PER"), (3, 5, "LOC")], [(0, 3, "ORG")]]
    pred = [[(0, 2, "PER"), (3, 6, "LOC")], [(0, 3, "ORG"), (4, 5, "PER")]]
    s = entity_scores(gold, pred)
    assert (s["precision"], s["recall"], s["entities"]) == (0.5, 0.6667, 3)  # 2 of 4, 2 of 3
    assert s["per_type"]["PER"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "gold": 1,
                                    "predicted": 2}
    assert s["per_type"]["LOC"]["f1"] == 0.0


def test_entity_scores_agree_with_seqeval():
    """Micro and per-type entity P/R/F1 against seqeval (its default, conlleval-style decoding:
    an I- that continues no entity of its type starts one, as :func:`spans_from_bio` does)."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    gold = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-ORG", "I-ORG", "I-ORG"],
            ["O", "B-LOC", "O", "B-PER", "O", "O"],
            ["B-ORG", "I-ORG", "B-LOC", "I-LOC", "O", "B-PER", "I-PER", "I-PER"],
            ["O", "O", "O"],
            ["B-LOC", "B-LOC", "O", "B-PER", "I-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC", "O", "O", "B-ORG", "I-ORG", "I-ORG"],  # LOC too short
            ["O", "B-ORG", "O", "B-PER", "O", "B-LOC"],  # wrong type; a spurious LOC
            ["I-ORG", "I-ORG", "B-LOC", "I-LOC", "O", "B-PER", "I-PER", "O"],  # I- start; PER short
            ["B-PER", "O", "O"],  # spurious
            ["B-LOC", "I-LOC", "O", "I-PER", "I-PER"]]  # two LOCs merged; PER from an I-
    ours = entity_scores([spans_from_bio(t) for t in gold], [spans_from_bio(t) for t in pred])
    assert ours["f1"] == round(f1_score(gold, pred), 4)
    assert ours["precision"] == round(precision_score(gold, pred), 4)
    assert ours["recall"] == round(recall_score(gold, pred), 4)
    assert (ours["precision"], ours["recall"]) == (round(6 / 12, 4), round(6 / 11, 4))
    report = classification_report(gold, pred, output_dict=True)
    for kind in KINDS:
        mine = ours["per_type"][kind]
        assert (mine["precision"], mine["recall"], mine["f1"], mine["gold"]) == (
            round(report[kind]["precision"], 4), round(report[kind]["recall"], 4),
            round(report[kind]["f1-score"], 4), report[kind]["support"])
    # the per-line counts of the comparison sum to the same micro F1
    counts = span_counts([spans_from_bio(t) for t in gold], [spans_from_bio(t) for t in pred])
    assert round(float(f1_metric(np.array(counts).sum(0), len(counts))), 4) == ours["f1"]


def test_segment_model_and_peers_give_aligned_word_counts(segmenter_dir, toy_data):
    """kexue's per-line word counts and every peer's sum to the word F1 each reports, and the
    comparison takes the peer strongest on valid."""
    metrics, _ = segment.evaluate(segmenter_dir, toy_data)
    peers = segment_peers.baselines(segment_peers.BaselineConfig(jieba=True, max_match_longest=4,
                                                     softmax_ablation=False), toy_data)
    assert metrics["items"]["kind"] == "f1" and metrics["items"]["metric"] == "f1"
    for system in (metrics, *peers.values()):
        for split in ("valid", "test"):
            counts = np.array(system["items"][split])
            assert counts.shape == (6, 3)  # one row per line, in the data's order
            assert counts[:, 2].sum() == system[split]["gold_words"]
            assert round(float(f1_metric(counts.sum(0), len(counts))), 4) == system[split]["f1"]
    valid_f1 = {name: peer["valid"]["f1"] for name, peer in peers.items()}
    attach(metrics, peers, resamples=50)
    block = metrics["comparison"]
    assert block["peer"] == max(valid_f1, key=valid_f1.get) and "items" not in metrics
    assert block["test"]["kexue"] == metrics["test"]["f1"]
    assert block["test"]["peer"] == peers[block["peer"]]["test"]["f1"]


def test_gazetteer_is_leftmost_longest():
    lexicon = {"北京": "LOC", "北京大学": "ORG", "张三": "PER"}
    assert ner_peers.gazetteer_spans("张三在北京大学", lexicon, 4) == [(0, 2, "PER"), (3, 7, "ORG")]


def test_jieba_and_max_match_peers_score_the_same_lines(toy_data):
    cfg = segment_peers.BaselineConfig(jieba=True, max_match_longest=4, softmax_ablation=False)
    peers = segment_peers.baselines(cfg, toy_data)
    assert set(peers) == {"jieba_hmm", "jieba_no_hmm", "max_match"}
    assert peers["max_match"]["test"]["f1"] == 1.0  # every test word is a training word
    for peer in peers.values():
        assert 0 < peer["test"]["f1"] <= 1 and peer["chars_per_second"] > 0


def test_lexicon_codes_mark_where_known_words_start_and_end():
    from kexue.text.tagging_features import lexicon_codes

    codes = lexicon_codes("我们在北京大学", {"我们", "北京", "北京大学", "大学"})
    bits = [int(c) - 1 for c in codes]
    start2, end2, start4, end4 = 1, 2, 1 << 4, 1 << 5  # length-2 and length-4 bits
    assert bits[0] == start2 and bits[1] == end2 and bits[2] == 0  # 我们 / 在
    assert bits[3] == start2 | start4  # 北京 and 北京大学 start at 北
    assert bits[4] == end2 and bits[5] == start2  # 北京 ends at 京; 大学 starts at 大
    assert bits[6] == end2 | end4  # 大学 and 北京大学 end at 学
    assert lexicon_codes("", {"我们"}).shape == (0,)
    long_word = lexicon_codes("一二三四五六七", {"一二三四五六七"})  # length 7 shares the 6-8 bits
    assert long_word[0] - 1 == 1 << 8 and long_word[6] - 1 == 1 << 9


def test_segmenter_with_the_lexicon_feature_trains_and_reloads(toy_data, tmp_path):
    segment.train(_cfg(lexicon_min_count=1), toy_data, tmp_path / "m", None, None)
    assert (tmp_path / "m" / "lexicon.json").is_file()
    seg = segment.Segmenter(tmp_path / "m")
    assert seg.tagger.features.lexicon and "新华社" in seg.tagger.features.lexicon
    assert seg.cut(["张三去上海。"]) == [["张", "三", "去", "上海", "。"]]

    # the same model computing in bfloat16 decodes the same words
    fast = _in_bfloat16(tmp_path / "m")
    assert fast.tagger.model.get_layer("conv0").compute_dtype == "bfloat16"
    assert fast.cut(TEXTS) == seg.cut(TEXTS)


def test_jieba_dictionary_feature_marks_words_missing_from_training(toy_data, tmp_path):
    from kexue.text.tagging_features import jieba_dictionary, lexicon_codes

    words = jieba_dictionary()
    assert len(words) > 300_000 and {"中非共和国", "石斑鱼", "大提琴"} <= words
    assert all(2 <= len(w) <= 8 for w in words)
    # a test-month word no training line has: the dictionary marks its start and end
    bits = [int(c) - 1 for c in lexicon_codes("我爱石斑鱼", words)]
    assert bits[2] & (1 << 2) and bits[4] & (1 << 3)  # a 3-character word starts at 石, ends at 鱼

    segment.train(_cfg(dictionary="jieba"), toy_data, tmp_path / "m", None, None)
    seg = segment.Segmenter(tmp_path / "m")
    assert "dictionary_codes" in [t.name.split(":")[0] for t in seg.tagger.model.inputs]
    assert seg.tagger.features.dictionary == words  # shipped with the model
    assert seg.cut(["张三去上海。"]) == [["张", "三", "去", "上海", "。"]]


def test_a_seed_ensemble_is_one_saved_model_with_averaged_transitions(toy_data, tmp_path):
    info = segment.train(_cfg(members=2, **{"fit": {**CFG["fit"], "epochs": 15}}), toy_data,
                         tmp_path / "m", None, None)
    assert len(info["members"]) == 2 and info["valid_f1_ensemble"] == 1.0
    seg = segment.Segmenter(tmp_path / "m")
    members = [layer for layer in seg.tagger.model.layers if layer.name.startswith("member")]
    assert len(members) == 2
    mean = np.mean([m.get_layer("crf").transitions.numpy() for m in members], axis=0)
    np.testing.assert_allclose(seg.tagger.transitions, mean, atol=1e-6)
    assert seg.cut(["张三去上海。"]) == [["张", "三", "去", "上海", "。"]]

    # the same ensemble computing in bfloat16 decodes the same words
    fast = _in_bfloat16(tmp_path / "m")
    assert fast.tagger.model.get_layer("member0").get_layer("conv0").compute_dtype == "bfloat16"
    assert fast.cut(TEXTS) == seg.cut(TEXTS)


def test_gazetteer_length_filter_is_chosen_on_valid(tmp_path):
    """A one-character training entity (the surname 王 tagged alone) matches inside other words
    everywhere: valid F1 prefers the lexicon without it, and every peer gives per-line counts."""
    train = [{"text": "王说北京好", "entities": [[0, 1, "PER"], [2, 4, "LOC"]]},
             {"text": "去北京了", "entities": [[1, 3, "LOC"]]}]
    held = [{"text": "王府井在北京", "entities": [[4, 6, "LOC"]]},
            {"text": "北京很大", "entities": [[0, 2, "LOC"]]}]
    for split, rows in (("train", train), ("valid", held), ("test", held)):
        write_jsonl(tmp_path / f"{split}.jsonl", [{"line": i, "words": list(r["text"]), **r}
                                                  for i, r in enumerate(rows)])
    peers = ner_peers.baselines(ner_peers.BaselineConfig(gazetteer_min_count=1, gazetteer_min_lengths=[1, 2],
                                             softmax_ablation=False), tmp_path)
    gazetteer = peers["gazetteer"]
    assert gazetteer["min_length"] == 2 and gazetteer["valid"]["f1"] == 1.0
    assert gazetteer["tried"]["1"]["valid_f1"] < 1.0
    assert gazetteer["items"]["test"] == [[1, 1, 1], [1, 1, 1]]
    assert span_counts([[(0, 1, "PER")]], [[(0, 1, "PER"), (2, 3, "LOC")]]) == [[1, 2, 1]]


def test_ner_crfsuite_peer_learns_entities_and_picks_its_penalty_on_valid(tmp_path):
    """CRFsuite on BIO tags finds a place name it saw in other contexts; c1 is the valid pick."""
    pytest.importorskip("sklearn_crfsuite")
    places = ["北京", "上海", "广州", "天津"]
    train = [{"text": f"他去{p}了", "entities": [[2, 4, "LOC"]]} for p in places] * 5
    train += [{"text": f"我在{p}住", "entities": [[2, 4, "LOC"]]} for p in places] * 5
    held = [{"text": "他去上海了", "entities": [[2, 4, "LOC"]]},
            {"text": "我在北京住", "entities": [[2, 4, "LOC"]]}]
    for split, rows in (("train", train), ("valid", held), ("test", held)):
        write_jsonl(tmp_path / f"{split}.jsonl", [{"line": i, "words": list(r["text"]), **r}
                                                  for i, r in enumerate(rows)])
    cfg = ner_peers.BaselineConfig(gazetteer_min_count=0, gazetteer_min_lengths=[2], softmax_ablation=False,
                             crfsuite_c1=[0.0, 50.0], crfsuite_c2=[0.01], crfsuite_max_iterations=50)
    peer = ner_peers.baselines(cfg, tmp_path)["crfsuite"]
    assert peer["test"]["f1"] == 1.0 and peer["items"]["test"] == [[1, 1, 1], [1, 1, 1]]
    assert peer["chosen"]["c1"] == 0.0  # a huge L1 penalty zeroes the weights: valid F1 drops
    assert [c["valid_score"] for c in peer["chosen"]["candidates"]][1] < 1.0
    assert peer["chars_per_second"] > 0
