"""Where a run's time goes: ``python -m kexue.timings [--out FILE] -- dvc repro [ARGS]``.

Runs the command, passes its output through, and records each stage's wall time from the lines
DVC prints when it starts a stage (``Running stage 'name':``); a stage ends where the next one
starts, or where the command ends. The 1-minute load average at each stage's end goes beside its
time, since a stage beside other work runs up to three times slower on two cores. Entries are
merged into ``FILE`` (default ``reports/timings.json``): a stage keeps its last measured time, so
partial runs add up to the whole pipeline. Stages DVC skipped (unchanged) are not timed, nor a
stage that failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from kexue.io import read_json, write_json

STAGE_LINE = re.compile(r"^Running stage '([^']+)'")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stage_times(lines, clock=time.monotonic, load=os.getloadavg, now=_stamp) -> dict[str, dict]:
    """``{stage: {"seconds", "load_1min", "finished"}}`` from an iterable of output lines, timed by
    ``clock`` as they arrive. Every line is echoed to stdout."""
    times: dict[str, dict] = {}
    current, started = None, 0.0

    def close(at: float) -> None:
        if current is not None:
            times[current] = {"seconds": round(at - started, 1), "load_1min": round(load()[0], 2),
                              "finished": now()}

    for line in lines:
        sys.stdout.write(line)
        sys.stdout.flush()
        match = STAGE_LINE.match(line)
        if match:
            at = clock()
            close(at)
            current, started = match.group(1), at
    close(clock())
    return times


def merge(path: Path, times: dict[str, dict]) -> dict:
    """The timings file with ``times`` merged in, and its totals recomputed."""
    old = read_json(path) if path.is_file() else {}
    stages = {**old.get("stages", {}), **times}
    ranked = sorted(stages, key=lambda s: -stages[s]["seconds"])
    return {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "total_seconds": round(sum(s["seconds"] for s in stages.values()), 1),
            "slowest": ranked[:5],
            "stages": dict(sorted(stages.items()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reports/timings.json")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- dvc repro [ARGS]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to time after --, e.g. -- dvc repro")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    times = stage_times(proc.stdout)
    code = proc.wait()
    if code != 0 and times:
        times.popitem()  # the stage that failed: its time measures nothing
    if times:
        write_json(args.out, merge(Path(args.out), times))
    return code


if __name__ == "__main__":
    sys.exit(main())
