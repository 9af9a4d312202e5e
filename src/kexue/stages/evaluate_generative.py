"""Stages `evaluate_<vae|nice|gan>` and `baselines_generative`.

``evaluate_generative <vae|nice|gan>``: bits/dim (VAE, NICE) and FMNIST-FID of the samples,
with the Gaussian-mixture peer merged in and the paired-bootstrap comparison with it (bits/dim
per image for VAE and NICE, FID with its own bootstrap for the GAN and beside bits/dim for the
others), the sample grid (and the VAE's latent traversal); the FID floor (test vs training
images) is the peer's, which the `gmm` stage computed with the same classifier on the same data.
``evaluate_generative gmm``: the peer — a scikit-learn GaussianMixture density on the same
dequantised data, its test bits/dim and its samples' FMNIST-FID (params ``baselines.generative``).

Their own module because the shared `evaluate` stage writes a confusion matrix, and these
families need the image classifier (``models/image``) for FID.
"""

import argparse
import importlib
import sys
from pathlib import Path

from kexue.config import ConfigError, load_section
from kexue.io import read_json, write_json


def _acceptance(metrics: dict, peer: dict) -> dict:
    """The model against the Gaussian mixture: lower bits/dim and lower FID are better."""
    out = {}
    ours, theirs = metrics["test"], peer.get("test", {})
    for key in ("nll_bits_per_dim", "bits_per_dim"):
        if key in ours and "bits_per_dim" in theirs:
            out["bits_per_dim_below_gmm"] = bool(ours[key] < theirs["bits_per_dim"])
    if "fid" in ours and "fid" in theirs:
        out["fid_below_gmm"] = bool(ours["fid"] < theirs["fid"])
    return out


def evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from kexue.comparison import attach
    from kexue.families._generative import model_fid_comparison
    from kexue.fid import FidScorer

    family = importlib.import_module(f"kexue.families.{args.family}")
    peer = read_json(args.peers) if args.peers else {}
    # the peer's stage scored the same classifier's floor (test vs train) on the same data: reuse
    # it rather than run the 60k training images through the classifier again
    scorer = (FidScorer(args.classifier, args.data,
                        floor=peer.get("test", {}).get("fid_floor_test_vs_train"))
              if args.classifier else None)
    metrics = family.evaluate(args.model, args.data, args.classifier, args.plots, scorer=scorer)
    if "nll_bits_per_dim" in metrics["test"] and "bits_per_dim" in peer.get("test", {}):
        # the mixture's bits/dim is an exact NLL: name it as the VAE's so the tables line it up
        peer = {**peer, "test": {"nll_bits_per_dim": peer["test"]["bits_per_dim"], **peer["test"]}}
    peers = {"gaussian_mixture": peer} if peer else {}
    ordered = attach({"test": metrics.pop("test"), "valid": metrics.pop("valid"), "peers": peers,
                      **metrics}, peers)
    if scorer is not None and args.peer_samples:
        # FID has no per-image terms: its own bootstrap (real images paired, samples resampled)
        block = model_fid_comparison(args.family, args.model, args.data, scorer,
                                     np.load(args.peer_samples))
        ordered["comparison" if "comparison" not in ordered else "comparison_fid"] = block
    ordered["acceptance"] = _acceptance(ordered, peer)
    write_json(args.out, ordered)
    print(f"evaluate_{args.family}: test {ordered['test']}", file=sys.stderr)
    return 0


def gmm(args: argparse.Namespace) -> int:
    from kexue.peers.generative import BaselineConfig, gaussian_mixture_peer

    try:
        cfg = load_section("baselines.generative", BaselineConfig)
        result = gaussian_mixture_peer(cfg, args.data, args.classifier,
                                       Path(args.plots) / "samples.png" if args.plots else None,
                                       samples_path=args.samples or None)
    except ConfigError as err:
        print(f"baselines_generative: {err}", file=sys.stderr)
        return 2
    write_json(args.out, result)
    print(f"baselines_generative: {result['covariance_type']} k={result['n_components']} "
          f"test {result['test']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("family", choices=["vae", "nice", "gan", "gmm"])
    parser.add_argument("--data", default="data/raw/fashion_mnist")
    parser.add_argument("--model", help="models/<family> (not for gmm)")
    parser.add_argument("--classifier", default="models/image", help="the image family's model (FID features)")
    parser.add_argument("--peers", default="", help="the JSON written by `evaluate_generative gmm` (with the same --classifier and --data: its FID floor is reused)")
    parser.add_argument("--out", required=True, help="metrics/<family>.json, or the peer's JSON")
    parser.add_argument("--plots", default="", help="plots/<family>/ for the PNGs")
    parser.add_argument("--samples", default="", help="gmm: where to keep its samples (.npy) for the FID comparisons")
    parser.add_argument("--peer-samples", default="", help="the .npy written by `evaluate_generative gmm --samples`")
    args = parser.parse_args(argv)
    if args.family == "gmm":
        return gmm(args)
    if not args.model:
        parser.error("--model is required for vae | nice | gan")
    args.plots = args.plots or None
    return evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
