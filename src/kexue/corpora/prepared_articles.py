"""The prepare_articles stage's splits read back, and the headline task's view of an article
(its first body paragraph in, its headline out)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from kexue.io import read_jsonl
from kexue.text.vocab import characters

_TRAILING_NOTES = re.compile(r"(?:（[^（）]*）|\([^()]*\))+$")  # "（附图片１张）", "(...)"


def load_articles(data_dir: str | Path, split: str) -> list[dict]:
    """The articles of ``split`` in the prepare_articles stage's folder."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro prepare_articles`")
    rows = read_jsonl(path)
    if not rows:
        raise ValueError(f"{path} is empty: rerun prepare_articles")
    return rows


def clean_headline(text: str, strip_notes: bool = True) -> str:
    """The headline without whitespace and, with ``strip_notes``, without trailing
    parentheticals ("迈向新世纪（附图片１张）" → "迈向新世纪"); never emptied by the cut."""
    text = "".join(characters(text))
    if strip_notes:
        cut = _TRAILING_NOTES.sub("", text)
        text = cut or text
    return text


def paragraph(article: dict) -> str:
    """The article's first body line (the headline model's input)."""
    return "".join(characters(article["body"][0]))


def headline_pairs(articles: Sequence[dict], strip_notes: bool) -> tuple[list[str], list[str]]:
    """(paragraphs, headlines) of the articles."""
    return ([paragraph(a) for a in articles],
            [clean_headline(a["headline"], strip_notes) for a in articles])
