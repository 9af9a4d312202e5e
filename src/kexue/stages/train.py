"""Stage `train@<family>`: train one family on its prepared data with its params section."""

import argparse
import importlib
import sys

from kexue import workers
from kexue.config import ConfigError, load_section
from kexue.io import CorruptFileError
from kexue.workers import chief_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("family")
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--live", required=True, help="DVCLive directory for training curves")
    parser.add_argument("--inputs", nargs="*", default=[], metavar="NAME=PATH",
                        help="further inputs a family reads, passed to its train() by name "
                        "(sentiment: vectors_root, tokenized_dir, augmented_dir)")
    parser.add_argument("--resume-root", default=".checkpoints",
                        help="per-epoch backups of unfinished runs (not a DVC output); '' = off")
    args = parser.parse_args(argv)
    inputs = dict(item.split("=", 1) for item in args.inputs if "=" in item)
    if len(inputs) != len(args.inputs):
        parser.error(f"--inputs takes NAME=PATH pairs, got {args.inputs}")
    family = importlib.import_module(f"kexue.families.{args.family}")
    from kexue.nonfinite import NonFiniteLoss  # after the family: it imports keras

    try:
        cfg = load_section(args.family, family.Config)
    except ConfigError as err:
        print(f"train@{args.family}: {err}", file=sys.stderr)
        return 2
    # fit.distribute: multi_worker runs this stage on every worker; only the chief keeps the
    # model and the curves, the others write theirs into temporary folders (kexue.workers)
    distribute = getattr(getattr(cfg, "fit", None), "distribute", "none")
    if distribute == "multi_worker":  # known before the family makes its strategy: the
        workers.joined()  # checkpoint code it calls first (finished members) asks who is chief
    try:
        with chief_path(args.model, distribute) as model, chief_path(args.live, distribute) as live:
            info = family.train(cfg, args.data, model, live, args.resume_root or None, **inputs)
    except NonFiniteLoss as err:  # raised by kexue.nonfinite.StopOnNonFiniteLoss inside fit
        err.section = err.section or args.family
        print(f"train@{args.family}: {err}", file=sys.stderr)
        return 1
    except CorruptFileError as err:  # a damaged input file (e.g. a Fashion-MNIST idx file)
        print(f"train@{args.family}: {err}", file=sys.stderr)
        return 1
    print(f"train@{args.family}: best {info['monitor']}={info['best_value']:.4f} at epoch "
          f"{info['best_epoch']}/{info['epochs_run']} in {info['train_seconds']:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
