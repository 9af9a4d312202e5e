"""Stage `headline_examples`: generated and real headlines of test articles (markdown + PNG)."""

import argparse
import sys
from pathlib import Path

from kexue.io import atomic_write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="data/prepared/articles")
    parser.add_argument("--model", required=True, help="the trained seq2seq model folder")
    parser.add_argument("--articles", type=int, default=20, help="test articles shown (spread evenly)")
    parser.add_argument("--out", required=True, help="markdown table")
    parser.add_argument("--png", required=True, help="the same rows as a picture")
    args = parser.parse_args(argv)
    from kexue.families.seq2seq_examples import example_rows, examples_markdown
    from kexue.plots import cjk_font, headline_table_png

    font = cjk_font()  # fail before the decoding
    rows = example_rows(args.model, args.data, args.articles)
    with atomic_write(args.out) as handle:
        handle.write(examples_markdown(rows))
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    headline_table_png(rows, args.png, font)
    print(f"headline_examples: {len(rows)} test articles → {args.out}, {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
