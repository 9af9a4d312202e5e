"""Stage `evaluate_center`: the center-loss model against its softmax-alone peer (metrics with
the comparison block, test confusion rows), and the 2-D plot of both models' test features."""

import argparse
import sys
from pathlib import Path

from kexue.comparison import attach
from kexue.families.center import evaluate, plot_features
from kexue.io import read_json, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="the Fashion-MNIST folder")
    parser.add_argument("--model", required=True, help="models/center (train_center)")
    parser.add_argument("--peers", required=True, help="JSON written by baselines_center")
    parser.add_argument("--out", required=True, help="metrics/center.json")
    parser.add_argument("--plots", required=True, help="folder for confusion.json and features.png")
    args = parser.parse_args(argv)
    try:
        metrics, confusion_rows = evaluate(args.model, args.data)
    except FileNotFoundError as err:
        print(f"evaluate_center: {err}", file=sys.stderr)
        return 1
    peers = read_json(args.peers)
    # the peer's 2-D points feed the plot only; the metrics file keeps scores
    projections = {name: peer.pop("projection", None) for name, peer in peers.items()}
    ordered = attach({"test": metrics.pop("test"), "valid": metrics.pop("valid"), "peers": peers,
                      **metrics}, peers)
    plots = Path(args.plots)
    plot_features(args.model, args.data, projections.get("softmax"), plots / "features.png")
    write_json(plots / "confusion.json", confusion_rows, indent=None)
    write_json(args.out, ordered)
    print(f"evaluate_center: test accuracy {ordered['test']['accuracy']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
