"""Stage `prepare_cloze`: HIT-People-Daily-style cloze samples from the prepared articles (a noun
or named entity that occurs again in the article is blanked in one of its sentences; the rest of
the article is the document), with the POS tags looked up in the raw corpus
(:mod:`kexue.corpora.cloze`). Keeps the chronological article split of `prepare_articles`."""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from kexue.config import ConfigError
from kexue.corpora.cloze import BLANK, build_split, read_corpus, split_counts, tag_articles
from kexue.io import read_jsonl
from kexue.stages import _prepare


@dataclass(frozen=True)
class Params:
    answer_tags: list[str]
    min_query_words: int = field(metadata={"min": 1})
    max_query_words: int = field(metadata={"min": 1})
    min_document_occurrences: int = field(metadata={"min": 1})
    train_answers_per_sentence: int = field(metadata={"min": 1})
    seed: int


def prepare(params: Params, articles_dir: str | Path, raw_dir: str | Path) -> tuple[dict, dict]:
    """(rows per split, counts) — see :func:`kexue.corpora.cloze.build_split`."""
    if not params.answer_tags:
        raise ConfigError("prepare_cloze.answer_tags is empty: list the PKU tags an answer may "
                          "have, e.g. [n, nr, ns, nt, nz]")
    if params.min_query_words > params.max_query_words:
        raise ConfigError(f"prepare_cloze.min_query_words ({params.min_query_words}) is above "
                          f"max_query_words ({params.max_query_words})")
    corpus = read_corpus(raw_dir)
    rows, counts, first = {}, {}, 0
    for split in ("train", "valid", "test"):
        path = Path(articles_dir) / f"{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run `dvc repro prepare_articles`")
        articles = read_jsonl(path)
        per_sentence = params.train_answers_per_sentence if split == "train" else 1
        rows[split] = build_split(
            articles, tag_articles(articles, corpus), params.seed, first_index=first,
            answer_tags=params.answer_tags, min_query_words=params.min_query_words,
            max_query_words=params.max_query_words,
            min_document_occurrences=params.min_document_occurrences,
            answers_per_sentence=per_sentence)
        first += len(articles)
        counts[split] = {"source_articles": len(articles), **split_counts(rows[split])}
    return rows, {"splits": counts}


def build(args, params: Params):
    rows, counts = prepare(params, args.articles, args.raw)
    return rows, counts, {"meta.json": {"answer_tags": params.answer_tags, "blank": BLANK}}


def main(argv: list[str] | None = None) -> int:
    return _prepare.run("prepare_cloze", __doc__, Params, ["199801.txt"], build, argv,
                        raw="data/raw/people_daily", out="data/prepared/cloze",
                        inputs={"--articles": "data/prepared/articles"})


if __name__ == "__main__":
    sys.exit(main())
