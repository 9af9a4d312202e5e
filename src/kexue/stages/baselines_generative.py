"""Stage `baselines_generative`: the generative families' peer — a scikit-learn GaussianMixture
density on the same dequantised Fashion-MNIST images (params ``baselines.generative``): its
bits/dim, its sample grid and the samples the `evaluate_<vae|nice|gan>` stages score by FMNIST-FID.
Keras-free and without the image classifier, so retraining that classifier leaves it cached."""

import argparse
import sys
from pathlib import Path

from kexue.config import ConfigError, load_section
from kexue.io import write_json


def main(argv: list[str] | None = None) -> int:
    from kexue.peers.generative import BaselineConfig, gaussian_mixture_peer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/raw/fashion_mnist")
    parser.add_argument("--out", required=True, help="the peer's JSON (models/baselines/generative.json)")
    parser.add_argument("--plots", default="", help="where the sample grid goes (samples.png)")
    parser.add_argument("--samples", required=True, help="where its samples go (.npy) for the FID comparisons")
    args = parser.parse_args(argv)
    try:
        cfg = load_section("baselines.generative", BaselineConfig)
        result = gaussian_mixture_peer(cfg, args.data,
                                       Path(args.plots) / "samples.png" if args.plots else None,
                                       samples_path=args.samples)
    except ConfigError as err:
        print(f"baselines_generative: {err}", file=sys.stderr)
        return 2
    write_json(args.out, result)
    print(f"baselines_generative: {result['covariance_type']} k={result['n_components']} "
          f"test {result['test']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
