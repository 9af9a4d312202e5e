"""Stage `finetune_image`: the fine-tuning experiment (pretrain on some Fashion-MNIST classes,
fine-tune on a few labels of the others, against training from scratch on the same images; params
``finetune`` and the ``image`` network), written to ``--out``."""

import argparse
import sys

from kexue.config import ConfigError, load_section
from kexue.io import write_json


def main(argv: list[str] | None = None) -> int:
    from kexue.families.finetune import FinetuneConfig, finetune
    from kexue.families.image import Config

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/raw/fashion_mnist")
    parser.add_argument("--out", default="metrics/finetune.json")
    args = parser.parse_args(argv)
    try:
        cfg = load_section("finetune", FinetuneConfig)
        image_cfg = load_section("image", Config)
        result = finetune(cfg, image_cfg, args.data)
    except ConfigError as err:
        print(f"finetune_image: {err}", file=sys.stderr)
        return 2
    write_json(args.out, result)
    delta = result["comparison"]["test"]
    print(f"finetune_image: fine-tuned {result['finetuned']['test_accuracy']} vs from scratch "
          f"{result['scratch']['test_accuracy']} ({delta['delta']:+.4f}, 95% CI {delta['ci95']})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
