"""Stage `evaluate@<family>`: metrics on valid and test, peers merged in, the comparison with the
strongest peer (paired bootstrap, where the family and its peers give per-item results) and, for
a family whose target names several metrics and peers, with every peer on each; plots written."""

import argparse
import importlib
import sys
from pathlib import Path

from kexue.comparison import attach
from kexue.every_peer import attach_every_peer
from kexue.io import read_json, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("family")
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--peers", required=True, help="JSON written by baselines@<family>")
    parser.add_argument("--out", required=True, help="metrics/<family>.json")
    parser.add_argument("--plots", required=True, help="plots/<family>/ for confusion rows")
    args = parser.parse_args(argv)
    family = importlib.import_module(f"kexue.families.{args.family}")
    metrics, confusion_rows = family.evaluate(args.model, args.data)
    peers = read_json(args.peers)
    metrics = attach_every_peer(metrics, peers)
    ordered = attach({"test": metrics.pop("test"), "valid": metrics.pop("valid"), "peers": peers,
                      **metrics}, peers)
    write_json(Path(args.plots) / "confusion.json", confusion_rows, indent=None)
    write_json(args.out, ordered)
    print(f"evaluate@{args.family}: test {ordered['test']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
