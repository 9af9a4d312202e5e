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
    try:
        clf = SentimentClassifier(args.model)
    except FileNotFoundError as err:
        print(f"kexue sentiment: {err}", file=sys.stderr)
        return 1
    for chunk in _batched(texts, 1024):
        probs = clf.predict_proba(chunk)
        _emit({"text": t, "label": LABELS[int(p >= 0.5)], "prob_pos": round(float(p), 4)}
              for t, p in zip(chunk, probs, strict=True))
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
