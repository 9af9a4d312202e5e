"""Stages `evaluate_<vae|nice|gan>`.

``evaluate_generative <vae|nice|gan>``: bits/dim (VAE, NICE) and FMNIST-FID of the samples,
with the Gaussian-mixture peer merged in and the paired-bootstrap comparison with it (bits/dim
per image for VAE and NICE, FID with its own bootstrap for the GAN and beside bits/dim for the
others), the sample grid (and the VAE's latent traversal); the peer's samples are scored by
FMNIST-FID here, with the same classifier, beside the model's, and the FID floor (test vs
training images) with them. The peer itself is fitted by the `baselines_generative` stage.

Their own module because the shared `evaluate` stage writes a confusion matrix, and these
families need the image classifier (``models/image``) for FID.
"""

import argparse
import importlib
import sys

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
    from kexue.fid import significant

    peer = read_json(args.peers) if args.peers else {}
    scorer = FidScorer(args.classifier, args.data) if args.classifier else None
    metrics = family.evaluate(args.model, args.data, args.classifier, args.plots, scorer=scorer)
    peer_samples = np.load(args.peer_samples) if args.peer_samples else None
    if scorer is not None and peer_samples is not None and peer:
        # the mixture's samples are scored here, with the classifier the model's are scored with
        peer = {**peer, "test": {**peer["test"], "fid": significant(scorer(peer_samples)),
                                 "fid_floor_test_vs_train": significant(scorer.floor())}}
    if "nll_bits_per_dim" in metrics["test"] and "bits_per_dim" in peer.get("test", {}):
        # the mixture's bits/dim is an exact NLL: name it as the VAE's so the tables line it up
        peer = {**peer, "test": {"nll_bits_per_dim": peer["test"]["bits_per_dim"], **peer["test"]}}
    peers = {"gaussian_mixture": peer} if peer else {}
    ordered = attach({"test": metrics.pop("test"), "valid": metrics.pop("valid"), "peers": peers,
                      **metrics}, peers)
    if scorer is not None and peer_samples is not None:
        # FID has no per-image terms: its own bootstrap (real images paired, samples resampled)
        block = model_fid_comparison(args.family, args.model, args.data, scorer, peer_samples)
        ordered["comparison" if "comparison" not in ordered else "comparison_fid"] = block
    ordered["acceptance"] = _acceptance(ordered, peer)
    write_json(args.out, ordered)
    print(f"evaluate_{args.family}: test {ordered['test']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("family", choices=["vae", "nice", "gan"])
    parser.add_argument("--data", default="data/raw/fashion_mnist")
    parser.add_argument("--model", required=True, help="models/<family>")
    parser.add_argument("--classifier", default="models/image", help="the image family's model (FID features)")
    parser.add_argument("--peers", default="", help="the JSON written by the baselines_generative stage")
    parser.add_argument("--out", required=True, help="metrics/<family>.json")
    parser.add_argument("--plots", default="", help="plots/<family>/ for the PNGs")
    parser.add_argument("--peer-samples", default="", help="the peer's samples (.npy) written by the baselines_generative stage")
    args = parser.parse_args(argv)
    args.plots = args.plots or None
    return evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
