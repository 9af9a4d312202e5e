"""Stage `errors_image`: the image classifier's most confident test errors drawn to a PNG (the
shared `evaluate` stage writes metrics and a confusion matrix only)."""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from kexue.corpora.fashion_mnist import load_split
    from kexue.families.image import load_classifier, predict_probs
    from kexue.families.image_errors import plot_errors

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/raw/fashion_mnist")
    parser.add_argument("--model", default="models/image")
    parser.add_argument("--out", default="plots/image/errors.png")
    parser.add_argument("-k", type=int, default=24, help="errors drawn")
    args = parser.parse_args(argv)
    model, info = load_classifier(args.model)
    images, labels = load_split(args.data, "test")
    probs = predict_probs(model, images, tta=info["config"]["tta"])
    drawn = plot_errors(images, probs, labels, args.out, k=args.k)
    print(f"errors_image: {drawn} most confident test errors drawn to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
