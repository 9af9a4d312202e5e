"""Stage `evaluate_ode`: parameter errors and extrapolation RMSE of the RNN fit next to the SciPy
peer's, and the plot of observed points, true and fitted trajectories.

Its own module because the shared `evaluate` stage writes a confusion matrix, which a
trajectory fit does not have."""

import argparse
import sys

from kexue.families.ode import evaluate
from kexue.io import read_json, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/prepared/ode")
    parser.add_argument("--model", default="models/ode")
    parser.add_argument("--peers", default="models/baselines/ode.json")
    parser.add_argument("--out", default="metrics/ode.json")
    parser.add_argument("--plot", default="plots/ode/trajectories.png")
    args = parser.parse_args(argv)
    metrics = evaluate(args.model, args.data, read_json(args.peers), args.plot)
    write_json(args.out, metrics)
    print(f"evaluate_ode: test {metrics['test']}", file=sys.stderr)
    print(f"evaluate_ode: acceptance {metrics['acceptance']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
