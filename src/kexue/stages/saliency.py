"""Stage `saliency@<family>`: which words drive the trained classifier's predictions
(occlusion and gradient×input, scored by the deletion curve's AOPC against random orders)."""

import argparse
import sys

from kexue.config import ConfigError, load_section
from kexue.io import write_json

FAMILIES = ("sentiment",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("family", choices=FAMILIES)
    parser.add_argument("--data", required=True, help="the prepared split (test.jsonl is scored)")
    parser.add_argument("--model", required=True, help="the trained model folder")
    parser.add_argument("--tokenized", required=True, help="the learnt lexicon (stage tokenize)")
    parser.add_argument("--out", required=True, help="metrics JSON")
    parser.add_argument("--plots", required=True, help="folder for deletion.json, words.html/png")
    args = parser.parse_args(argv)
    from kexue.families.sentiment_saliency import sentiment_saliency
    from kexue.text import saliency

    try:
        cfg = load_section("saliency", saliency.Config)
        saliency.check(cfg)
    except ConfigError as err:
        print(f"saliency@{args.family}: {err}", file=sys.stderr)
        return 2
    metrics = sentiment_saliency(cfg, args.model, args.data, args.tokenized, args.plots)
    write_json(args.out, metrics)
    test = metrics["test"]
    print(f"saliency@{args.family}: AOPC occlusion {test['aopc_occlusion']}, gradient×input "
          f"{test['aopc_gradient_x_input']}, random {test['aopc_random']} "
          f"({test['texts']} texts, {metrics['cost']['total_seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
