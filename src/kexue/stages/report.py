"""Stage `report`: the results table from metrics/*.json (and, with --readme, into README.md)."""

import argparse
import sys

from kexue.io import atomic_write
from kexue.report import render, update_readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--out", default="reports/results.md")
    parser.add_argument("--readme", help="also fill the results block of this README")
    args = parser.parse_args(argv)
    body = render(args.metrics)
    with atomic_write(args.out) as handle:
        handle.write(body)
    if args.readme:
        changed = update_readme(args.readme, body)
        print(f"report: {args.readme} {'updated' if changed else 'unchanged'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
