"""Sum a stage CPU log (see sitecustomize.py here): per stage CPU seconds, the share spent by
processes that imported TensorFlow, and the total.

    python -m bench.stage_cpu LOG [--out reports/tiny_stage_cpu.json]
"""

import argparse
import json
import sys
from pathlib import Path


def stage_name(argv: list[str]) -> str:
    module = Path(argv[0]).stem
    return f"{module} {argv[1]}" if len(argv) > 1 and not argv[1].startswith("-") else module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log")
    parser.add_argument("--out", help="write the summary as JSON here")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in Path(args.log).read_text(encoding="utf-8").splitlines()
            if line.strip()]
    stages = sorted(({"stage": stage_name(r["argv"]), "cpu_seconds": r["cpu"],
                      "wall_seconds": r["wall"], "tensorflow": r["tensorflow"]} for r in rows),
                    key=lambda r: -r["cpu_seconds"])
    total = round(sum(r["cpu_seconds"] for r in stages), 1)
    summary = {"processes": len(stages), "cpu_seconds": total,
               "processes_with_tensorflow": sum(r["tensorflow"] for r in stages),
               "stages": stages}
    for r in stages[:15]:
        print(f"{r['cpu_seconds']:7.1f} s  {'TF' if r['tensorflow'] else '  '}  {r['stage']}")
    print(f"{total} CPU s in {len(stages)} stage processes, "
          f"{summary['processes_with_tensorflow']} of them import TensorFlow")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
