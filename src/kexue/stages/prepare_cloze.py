"""Stage `prepare_cloze`: HIT-People-Daily-style cloze samples from the prepared articles (a noun
or named entity that occurs again in the article is blanked in one of its sentences; the rest of
the article is the document), with the POS tags looked up in the raw corpus
(:mod:`kexue.corpora.cloze`). Keeps the chronological article split of `prepare_articles`."""

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kexue.config import ConfigError, load_section
from kexue.corpora.cloze import BLANK, build_split, read_corpus, split_counts, tag_articles
from kexue.corpora.sources import AcquireError, add_no_verify, verify_raw
from kexue.io import CorruptFileError, atomic_dir, read_jsonl, write_json, write_jsonl


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", default="data/prepared/articles")
    parser.add_argument("--raw", default="data/raw/people_daily")
    parser.add_argument("--out", default="data/prepared/cloze")
    parser.add_argument("--metrics", default="metrics/cloze_data.json")
    add_no_verify(parser)
    args = parser.parse_args(argv)
    try:
        params = load_section("prepare_cloze", Params)
        if not args.no_verify:
            verify_raw(args.raw, ["199801.txt"])
        rows, counts = prepare(params, args.articles, args.raw)
    except ConfigError as err:
        print(f"prepare_cloze: {err}", file=sys.stderr)
        return 2
    except (AcquireError, CorruptFileError, FileNotFoundError) as err:
        print(f"prepare_cloze: {err}", file=sys.stderr)
        return 1
    with atomic_dir(args.out) as tmp:
        for name, part in rows.items():
            write_jsonl(Path(tmp) / f"{name}.jsonl", part)
        write_json(Path(tmp) / "meta.json", {"answer_tags": params.answer_tags, "blank": BLANK})
    write_json(args.metrics, counts)
    print(f"prepare_cloze: {counts['splits']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
