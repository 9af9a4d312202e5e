"""The command line every `prepare_*` stage that writes a split shares: read its params section,
check the raw files against the manifest (unless ``--no-verify``), build the split, write
``train/valid/test.jsonl`` (and any extra JSON files) atomically into ``--out`` and the counts
to ``--metrics``. A bad param exits 2, a missing or damaged raw file 1, each with one line that
names the stage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from kexue.config import ConfigError, load_section
from kexue.corpora.sources import AcquireError, add_no_verify, verify_raw
from kexue.io import CorruptFileError, atomic_dir, write_json, write_jsonl

# build(args, params) -> (rows per split name, counts with a "splits" entry, extra JSON files)
Build = Callable[[argparse.Namespace, object], tuple[dict[str, list], dict, dict[str, object]]]


def run(stage: str, doc: str, params_type: type, raw_files: Iterable[str], build: Build,
        argv: list[str] | None, raw: str, out: str, inputs: dict[str, str] | None = None) -> int:
    """Parse ``argv`` (``--raw``, ``--out``, ``--metrics``, ``--no-verify`` and the ``inputs``
    options with their defaults), then prepare as the module docstring says."""
    parser = argparse.ArgumentParser(description=doc)
    for option, default in (inputs or {}).items():
        parser.add_argument(option, default=default)
    parser.add_argument("--raw", default=raw)
    parser.add_argument("--out", default=out)
    parser.add_argument("--metrics", default=f"metrics/{Path(out).name}_data.json")
    add_no_verify(parser)
    args = parser.parse_args(argv)
    try:
        params = load_section(stage, params_type)
        if not args.no_verify:
            verify_raw(args.raw, list(raw_files))
        parts, counts, extra = build(args, params)
    except ConfigError as err:
        print(f"{stage}: {err}", file=sys.stderr)
        return 2
    except (AcquireError, CorruptFileError, FileNotFoundError) as err:
        print(f"{stage}: {err}", file=sys.stderr)
        return 1
    with atomic_dir(args.out) as tmp:
        for name, rows in parts.items():
            write_jsonl(Path(tmp) / f"{name}.jsonl", rows)
        for name, data in extra.items():
            write_json(Path(tmp) / name, data)
    write_json(args.metrics, counts)
    print(f"{stage}: {counts['splits']}", file=sys.stderr)
    return 0


def split_parts(split) -> dict[str, list]:
    """The rows of a split object with ``train``, ``valid`` and ``test`` attributes."""
    return {name: getattr(split, name) for name in ("train", "valid", "test")}
