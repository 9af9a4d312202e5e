"""Cost of TensorFlow's deterministic ops on the sentiment model, measured in one run.

Each setting trains in its own subprocess (``enable_op_determinism`` cannot be switched off once
on), alternating on/off for ``--repeats`` rounds on the same data slice; prints the median
seconds per epoch of each and the ratio. Needs ``data/prepared/reviews`` (run the pipeline first).

    python -m bench.sentiment_determinism --examples 3000 --repeats 2
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = r"""
import dataclasses, json, sys, time
from pathlib import Path
from kexue.config import load_section
from kexue.families import sentiment
from kexue.io import read_jsonl, write_jsonl
deterministic, examples, out = sys.argv[1] == "1", int(sys.argv[2]), Path(sys.argv[3])
for split in ("train", "valid"):
    rows = read_jsonl(Path("data/prepared/reviews") / f"{split}.jsonl")
    write_jsonl(out / "data" / f"{split}.jsonl", rows[: examples if split == "train" else examples // 10])
cfg = load_section("sentiment", sentiment.Config)
cfg = dataclasses.replace(cfg, fit=dataclasses.replace(cfg.fit, epochs=2, deterministic=deterministic))
info = sentiment.train(cfg, out / "data", out / "model", None)
print(json.dumps({"seconds": info["train_seconds"], "epochs": info["epochs_run"]}))
"""


def run_once(deterministic: bool, examples: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-c", WORKER, "1" if deterministic else "0",
                               str(examples), tmp], capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["seconds"] / result["epochs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not Path("data/prepared/reviews/train.jsonl").is_file():
        sys.exit("bench: data/prepared/reviews missing; run `dvc repro prepare_reviews` first")
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeats):
        for flag in (False, True):
            times[flag].append(run_once(flag, args.examples))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"seconds/epoch ({args.examples} reviews, median of {args.repeats}): "
          f"deterministic off {off:.2f}, on {on:.2f}, ratio on/off {on / off:.3f}")


if __name__ == "__main__":
    main()
