"""`kexue <task> ...`: run the trained models of the pipeline on new text.

Input is the positional texts, or the lines of ``--file``, or standard input; output is one JSON
object per input line on standard output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator


def _inputs(args: argparse.Namespace) -> list[str]:
    if args.text:
        return list(args.text)
    if args.file:
        if args.file == "-":
            return [line.rstrip("\n") for line in sys.stdin]
        with open(args.file, encoding="utf-8") as handle:
            return [line.rstrip("\n") for line in handle]
    if sys.stdin.isatty():
        raise SystemExit("kexue: give texts as arguments, --file PATH, or pipe them on stdin")
    return [line.rstrip("\n") for line in sys.stdin]


def _batched(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _emit(rows: Iterable[dict]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def sentiment(args: argparse.Namespace) -> int:
    from kexue.families.sentiment import LABELS, SentimentClassifier

    texts = _inputs(args)
    clf = _load("sentiment", SentimentClassifier, args.model)
    if clf is None:
        return 1
    for chunk in _batched(texts, 1024):
        probs = clf.predict_proba(chunk)
        _emit({"text": t, "label": LABELS[int(p >= 0.5)], "prob_pos": round(float(p), 4)}
              for t, p in zip(chunk, probs, strict=True))
    return 0


def _load(command: str, loader, model_dir: str):
    """The command's trained model, or None after a message naming what is missing."""
    try:
        return loader(model_dir)
    except FileNotFoundError as err:
        print(f"kexue {command}: {err}", file=sys.stderr)
        return None


def segment(args: argparse.Namespace) -> int:
    from kexue.families.segment import Segmenter

    texts = _inputs(args)
    segmenter = _load("segment", Segmenter, args.model)
    if segmenter is None:
        return 1
    for chunk in _batched(texts, 1024):
        words = segmenter.cut(chunk)
        _emit({"text": t, "words": w} for t, w in zip(chunk, words, strict=True))
    return 0


def ner(args: argparse.Namespace) -> int:
    from kexue.families.ner import Recognizer

    texts = _inputs(args)
    recognizer = _load("ner", Recognizer, args.model)
    if recognizer is None:
        return 1
    for chunk in _batched(texts, 1024):
        spans = recognizer.spans(chunk)
        _emit({"text": t,
               "entities": [{"text": t[start:end], "type": kind, "start": start, "end": end}
                            for start, end, kind in s]}
              for t, s in zip(chunk, spans, strict=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kexue", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sentiment", help="positive/negative review sentiment (JSON lines out)")
    p.add_argument("text", nargs="*", help="texts to classify (default: --file or stdin)")
    p.add_argument("--file", help="read one text per line from this file ('-' = stdin)")
    p.add_argument("--model", default="models/sentiment", help="trained model directory")
    p.set_defaults(func=sentiment)
    p = sub.add_parser("segment", help="Chinese word segmentation (JSON lines out)")
    p.add_argument("text", nargs="*", help="texts to segment (default: --file or stdin)")
    p.add_argument("--file", help="read one text per line from this file ('-' = stdin)")
    p.add_argument("--model", default="models/segment", help="trained model directory")
    p.set_defaults(func=segment)
    p = sub.add_parser("ner", help="person / place / organisation names (JSON lines out)")
    p.add_argument("text", nargs="*", help="texts to tag (default: --file or stdin)")
    p.add_argument("--file", help="read one text per line from this file ('-' = stdin)")
    p.add_argument("--model", default="models/ner", help="trained model directory")
    p.set_defaults(func=ner)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
