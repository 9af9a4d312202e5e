"""Per-stage CPU accounting for a `dvc repro` (the tiny profile's, say): put this folder first on
PYTHONPATH and set KEXUE_STAGE_CPU_LOG to a file; every `python -m kexue.stages.<name>` process
appends one JSON line at exit: its argv, wall and CPU seconds (user + system, children
excluded), and whether it imported TensorFlow / Keras / scikit-learn. `python -m
bench.stage_cpu LOG` sums the lines."""

import atexit
import json
import os
import sys
import time

_LOG = os.environ.get("KEXUE_STAGE_CPU_LOG")
_START = time.time()


def _record() -> None:
    argv = list(sys.argv)
    if not argv or "kexue/stages/" not in str(argv[0]).replace(os.sep, "/"):
        return
    times = os.times()
    line = {"argv": argv, "wall": round(time.time() - _START, 2),
            "cpu": round(times.user + times.system, 2),
            "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules,
            "sklearn": "sklearn" in sys.modules}
    with open(_LOG, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


if _LOG:
    atexit.register(_record)
