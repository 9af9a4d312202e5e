"""Stage `prepare_ode`: simulate the ODE from its true parameters and observe it sparsely, with
noise (the `ode.simulate` params)."""

import argparse
import sys
from pathlib import Path

from kexue.config import ConfigError, load_section
from kexue.families.ode import Config
from kexue.families.ode_problem import PROBLEM_FILE, simulate
from kexue.io import atomic_dir, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="data/prepared/ode")
    args = parser.parse_args(argv)
    try:
        cfg = load_section("ode", Config)
    except ConfigError as err:
        print(f"prepare_ode: {err}", file=sys.stderr)
        return 2
    problem = simulate(cfg.system, cfg.simulate)
    with atomic_dir(args.out) as tmp:
        write_json(Path(tmp) / PROBLEM_FILE, problem, indent=None)
    print(f"prepare_ode: {cfg.system}, {len(problem['observations'])} trajectory(ies) x "
          f"{len(problem['obs_times'])} observations in [0, {cfg.simulate.fit_until}], noise "
          f"{cfg.simulate.noise}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
