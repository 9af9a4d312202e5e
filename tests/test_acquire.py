import hashlib
import json

import pytest

from kexue.corpora.sources import AcquireError, acquire, default_roots, load_manifest
from kexue.io import sha256_file


def _fake_source(tmp_path, content=b"hello\n"):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_bytes(content)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({
        "sources": {"pkg": {"what": "PyPI package fakepkg==1.0", "install": "pip install fakepkg==1.0"}},
        "files": [{"dest": "group/a.txt", "source": "pkg", "path": "sub/a.txt", "bytes": 6,
                   "sha256": hashlib.sha256(b"hello\n").hexdigest()}],
    }))
    return src, manifest


def test_copies_and_verifies(tmp_path):
    src, manifest = _fake_source(tmp_path)
    out = tmp_path / "raw"
    copied = acquire(out, roots={"pkg": src}, manifest=manifest)
    assert (out / "group" / "a.txt").read_bytes() == b"hello\n"
    assert copied["group/a.txt"]["bytes"] == 6


def test_checksum_mismatch_names_file_and_leaves_nothing(tmp_path):
    src, manifest = _fake_source(tmp_path, content=b"tampered\n")
    out = tmp_path / "raw"
    with pytest.raises(AcquireError, match=r"checksum mismatch for group/a.txt"):
        acquire(out, roots={"pkg": src}, manifest=manifest)
    assert not (out / "group").exists()
    assert list(out.iterdir()) == []  # no temp folder either


def test_missing_source_names_package_and_fix(tmp_path):
    _, manifest = _fake_source(tmp_path)
    with pytest.raises(AcquireError, match=r"fakepkg==1.0 is not installed.*pip install fakepkg==1.0"):
        acquire(tmp_path / "raw", roots={"pkg": None}, manifest=manifest)
    assert not (tmp_path / "raw").exists()


def test_unknown_group(tmp_path):
    src, manifest = _fake_source(tmp_path)
    with pytest.raises(AcquireError, match="unknown corpus group"):
        acquire(tmp_path / "raw", groups=["nope"], roots={"pkg": src}, manifest=manifest)


def test_real_manifest_matches_installed_packages():
    """Every file of the committed manifest is installed here with the pinned checksum."""
    _, files = load_manifest()
    roots = default_roots()
    for entry in files:
        root = roots[entry.source]
        assert root is not None, f"{entry.source} not installed: run make setup"
        path = root / entry.path
        assert path.stat().st_size == entry.bytes
        assert sha256_file(path) == entry.sha256, entry.dest
