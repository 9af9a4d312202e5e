import json

import pytest

from kexue.corpora.articles import (
    extract_articles,
    lead_sentence,
    line_kind,
    prepare_articles,
    split_sentences,
)

SNIPPET = [
    "迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）",  # headline (trailing parenthetical)
    "中共中央总书记、国家主席江泽民",  # a second headline-like line: subtitle
    "（一九九七年十二月三十一日）",  # caption: only a parenthetical
    "１２月３１日，江泽民发表新年讲话。（新华社记者兰红光摄）",
    "同胞们、朋友们：",
    "在１９９８年来临之际，我十分高兴。谢谢！",
    "北京举行新年音乐会",  # a new article ...
    "音乐会在雄壮的管弦乐中拉开帷幕。",  # ... with only one body line: dropped
    "天气趋势分析",
    "２",  # numbering: skipped, the article goes on
    "受暖湿气流影响，今天晚上将有小到中雨。",
    "他说：“明天转晴。”后天呢？",
]


def test_line_kinds():
    assert line_kind("李鹏在北京考察企业", 40) == "headline"
    assert line_kind("迈向充满希望的新世纪（附图片１张）", 40) == "headline"
    assert line_kind("（传真照片）", 40) == "caption"
    assert line_kind("２", 40) == "caption"
    assert line_kind("谢谢！（新华社北京１２月３１日电）", 40) == "body"
    assert line_kind("同胞们、朋友们：", 40) == "body"
    assert line_kind("他说：“好。”", 40) == "body"
    assert line_kind("一个很长的没有标点的标题" * 5, 40) == "body"  # longer than a headline may be


def test_extract_articles_from_a_snippet():
    articles = extract_articles(SNIPPET, max_headline_chars=40, min_body_lines=2)
    assert [a["headline"] for a in articles] == [SNIPPET[0], "天气趋势分析"]
    first, second = articles
    assert first["line"] == 1 and first["subtitles"] == ["中共中央总书记、国家主席江泽民"]
    assert first["body"] == SNIPPET[3:6]
    assert second["line"] == 9 and second["body"] == SNIPPET[10:12]
    assert lead_sentence(first) == "１２月３１日，江泽民发表新年讲话。"
    assert len(extract_articles(SNIPPET, 40, min_body_lines=1)) == 3


def test_split_sentences_keeps_marks_and_quotes():
    assert split_sentences("他说：“明天转晴。”后天呢？好！") == ["他说：“明天转晴。”", "后天呢？", "好！"]
    assert split_sentences("没有句末标点") == ["没有句末标点"]
    assert split_sentences("短。长一点的句子。", min_chars=3) == ["长一点的句子。"]


def test_prepare_articles_splits_chronologically(tmp_path):
    lines = []
    for i in range(20):
        lines += [f"第{i}号新闻标题/n", f"第{i}篇的第一句/n  。/w  第二句/n  。/w", "又一行/n  ！/w"]
    (tmp_path / "199801.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    split = prepare_articles(tmp_path, test_fraction=0.1, valid_fraction=0.2)
    assert [len(split.train), len(split.valid), len(split.test)] == [14, 4, 2]
    ids = [r["id"] for r in split.train + split.valid + split.test]
    assert ids == sorted(ids) and split.test[-1]["headline"] == "第19号新闻标题"
    row = split.train[0]
    assert row["sentences"] == ["第0篇的第一句。", "第二句。", "又一行！"] and row["lead"] == "第0篇的第一句。"
    assert split.counts["splits"]["test"]["articles"] == 2 and split.counts["articles"] == 20
    json.dumps(split.counts)
    assert len(prepare_articles(tmp_path, 0.1, 0.2, limit_articles=10).test) == 1
    with pytest.raises(ValueError, match="every split"):
        prepare_articles(tmp_path, 0.01, 0.01)
    with pytest.raises(FileNotFoundError, match="acquire"):
        prepare_articles(tmp_path / "missing")
