"""Stages `errors_image` and `finetune_image`: the PNG of the image classifier's most
confident test errors, and the fine-tuning experiment (pretrain on some classes, fine-tune on
a few labels of the others, against training from scratch on the same images).

Their own module because the shared `evaluate` stage writes metrics and a confusion matrix only."""

import argparse
import sys

from kexue.config import ConfigError, load_section
from kexue.io import write_json


def errors(args: argparse.Namespace) -> int:
    from kexue.corpora.fashion_mnist import load_split
    from kexue.families.image import load_classifier, plot_errors, predict_probs

    model, info = load_classifier(args.model)
    images, labels = load_split(args.data, "test")
    probs = predict_probs(model, images, tta=info["config"]["tta"])
    drawn = plot_errors(images, probs, labels, args.out, k=args.k)
    print(f"errors_image: {drawn} most confident test errors drawn to {args.out}", file=sys.stderr)
    return 0


def finetune(args: argparse.Namespace) -> int:
    from kexue.families.image import Config, FinetuneConfig, finetune

    try:
        cfg = load_section("finetune", FinetuneConfig)
        image_cfg = load_section("image", Config)
        result = finetune(cfg, image_cfg, args.data)
    except ConfigError as err:
        print(f"finetune_image: {err}", file=sys.stderr)
        return 2
    write_json(args.out, result)
    print(f"finetune_image: fine-tuned {result['finetuned']['test_accuracy']} vs from scratch "
          f"{result['scratch']['test_accuracy']} ({result['gain_points']:+.2f} points)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("errors", help="PNG of the most confident test errors")
    p.add_argument("--data", default="data/raw/fashion_mnist")
    p.add_argument("--model", default="models/image")
    p.add_argument("--out", default="plots/image/errors.png")
    p.add_argument("-k", type=int, default=24, help="errors drawn")
    p.set_defaults(func=errors)
    p = sub.add_parser("finetune", help="fine-tuned vs from scratch on a few labels")
    p.add_argument("--data", default="data/raw/fashion_mnist")
    p.add_argument("--out", default="metrics/finetune.json")
    p.set_defaults(func=finetune)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
