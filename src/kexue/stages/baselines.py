"""Stage `baselines@<family>`: the peers a practitioner would use, on the same split."""

import argparse
import importlib
import sys

from kexue.config import ConfigError, load_section
from kexue.io import write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("family")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--network", help="params section of the network a peer retrains or "
                        "shares settings with (e.g. the softmax ablation's); omit when none does")
    args = parser.parse_args(argv)
    # a family's peers: kexue.peers.<family>, Keras-free unless a peer retrains the network, whose
    # params section schema it names as NetworkConfig
    module = importlib.import_module(f"kexue.peers.{args.family}")
    try:
        cfg = load_section(f"baselines.{args.family}", module.BaselineConfig)
        network = {"network": load_section(args.network, module.NetworkConfig)} if args.network else {}
    except ConfigError as err:
        print(f"baselines@{args.family}: {err}", file=sys.stderr)
        return 2
    peers = module.baselines(cfg, args.data, **network)
    write_json(args.out, peers)
    for name, result in peers.items():
        print(f"baselines@{args.family}: {name} test {result['test']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
