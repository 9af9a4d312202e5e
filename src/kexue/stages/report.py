"""Stage `report`: the results table from metrics/*.json (and, with --readme, into README.md;
with --timings too, the stage times of reports/timings.json into the README's timings block —
`make run` passes both after `dvc repro`, the DVC stage neither)."""

import argparse
import sys

from kexue.io import atomic_write
from kexue.report import TIMINGS_END, TIMINGS_START, render, timings_section, update_readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--out", default="reports/results.md")
    parser.add_argument("--readme", help="also fill the results block of this README")
    parser.add_argument("--timings", help="with --readme: fill its timings block from this file "
                        "(reports/timings.json)")
    args = parser.parse_args(argv)
    body = render(args.metrics)
    with atomic_write(args.out) as handle:
        handle.write(body)
    if args.readme:
        changed = update_readme(args.readme, body)
        if args.timings:
            changed |= update_readme(args.readme, timings_section(args.timings), TIMINGS_START,
                                     TIMINGS_END)
        print(f"report: {args.readme} {'updated' if changed else 'unchanged'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
