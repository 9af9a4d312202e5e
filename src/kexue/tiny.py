"""The tiny profile: the whole pipeline on a few hundred examples per family, one epoch each.

``python -m kexue.tiny [DEST]`` (``make quick``) copies the project's pipeline files into a
scratch directory (a new temp directory unless ``DEST`` is given), shrinks ``params.yaml`` with
:func:`tiny_params`, and runs ``dvc repro`` there: every stage runs once, so a newcomer sees the
whole DAG work before the long default run. The figures it writes mean nothing beyond that; the
checkout it was started from is not touched. The end-to-end test runs the same profile.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

PIPELINE_FILES = ("dvc.yaml", "params.yaml", "pyproject.toml", "README.md")


def tiny_params(params: dict, **sentiment_overrides) -> dict:
    """``params`` (the loaded default ``params.yaml``) shrunk to the tiny profile, in place.

    Only keys the defaults already have are changed (tests/test_tiny.py checks it), so the
    profile cannot drift from the schemas unnoticed."""
    p = params
    p["prepare_reviews"]["limit_per_label"] = 150
    p["sentiment"].update(embedding_dim=16, units=8, maxlen=64, members=1, **sentiment_overrides)
    p["sentiment"]["fit"]["epochs"] = 1
    p["baselines"]["sentiment"].update(c_grid=[1.0], fasttext_lr=[0.5], fasttext_epoch=[5],
                                       fasttext_word_ngrams=[2])
    p["prepare_people_daily"]["limit_lines"] = 300
    for family in ("segment", "ner", "segment_closed"):
        p[family].update(embedding_dim=8, units=16, layers=1, members=1)
        p[family]["fit"]["epochs"] = 1
    p["baselines"]["segment"]["softmax_ablation"] = False
    p["baselines"]["segment_closed"].update(crfsuite_c1=[0.1], crfsuite_max_iterations=20)
    p["baselines"]["ner"].update(crfsuite_c1=[0.1], crfsuite_max_iterations=20)
    p["multilabel"].update(embedding_dim=8, units=16, layers=1)
    p["multilabel"]["fit"]["epochs"] = 1
    p["baselines"]["multilabel"].update(losses=["bce"], c_grid=[1.0], fasttext_lr=[0.5],
                                        fasttext_epoch=[5], fasttext_word_ngrams=[2])
    p["segment"]["dictionary"] = "none"  # jieba's 350k-word list is tested in test_tagging
    p["word2vec"].update(dim=8, epochs=1, min_count=1)
    p["glove"].update(dim=8, epochs=1, min_count=1)
    p["baselines"]["word2vec"].update(query_min_count=1, candidate_min_count=1)
    # glove's vectors reach the sentiment model through the same loader as word2vec's
    p["downstream_sentiment"].update(epochs=1, embeddings=["word2vec", "none"])
    p["ode"]["fit"]["epochs"] = 20
    p["prepare_articles"]["limit_articles"] = 60
    p["similarity"].update(embedding_dim=8, units=8, maxlen=32, bigrams=False, hash_dim=1024,
                           hash_slots=65536)
    p["similarity"]["fit"]["epochs"] = 1
    p["baselines"]["similarity"].update(margin_ablation=False, tfidf_ngram_max=[2],
                                        bm25_terms=["both"], bm25_k1=[1.5], bm25_b=[0.75])
    p["cloze"].update(embedding_dim=8, units=8, train_document_words=60)
    p["cloze"]["fit"]["epochs"] = 1
    p["seq2seq"].update(maxlen=32, max_headline=8, embedding_dim=8, units=8, condition_units=4,
                        attention_heads=1, attention_key_dim=4, hidden=8, beam_size=2,
                        extract_layers=1, extract_units=8, extract_epochs=1, extract_chars=[6, 10])
    p["seq2seq"]["fit"]["epochs"] = 1
    p["baselines"]["seq2seq"].update(tfidf_ngram_max=[1], tfidf_scoring=["sum"])
    for family in ("vae", "nice", "gan"):
        p[family].update(limit_train=600, valid_size=100, fid_samples=200)
        p[family]["fit"]["epochs"] = 1
    p["vae"].update(width=32, hidden_layers=1, latent=4, importance_samples=5)
    p["nice"].update(width=16, depth=1, couplings=2)
    p["gan"].update(width=4, latent=8)
    p["baselines"]["generative"].update(components={"diag": [2]}, max_train=500, max_iter=10,
                                        valid_size=100, fid_samples=200)
    p["compare_validation"].update(c_grid=[1.0], ngram_max=[1, 2])
    p["saliency"].update(texts=20, render=5)
    p["image"].update(width=4, blocks=1, limit_train=600, valid_size=100, precision="float32",
                      xla=False)  # XLA compiles each model for seconds: not worth it here
    p["image"]["fit"]["epochs"] = 1
    p["image"]["warmup_epochs"] = 0.5
    p["baselines"]["image"].update(logistic_max_iter=20, adaboost_estimators=2,
                                   forest_estimators=3)
    p["center"].update(width=4, feature_dim=4, center_weights=[0.01], limit_train=600, valid_size=100,
                       precision="float32", xla=False,
                       warmup_epochs=0.5, knn_neighbours=[1, 5], plot_images=100)
    p["center"]["fit"]["epochs"] = 1
    p["finetune"].update(labels_per_class=10, valid_per_class=5, pretrain_epochs=1, epochs=1,
                         max_epochs=1, batch_size=10)
    return p


def write_tiny_params(repo: Path, **sentiment_overrides) -> None:
    """Rewrite ``repo/params.yaml`` as the tiny profile of the defaults it holds."""
    path = Path(repo) / "params.yaml"
    params = tiny_params(yaml.safe_load(path.read_text(encoding="utf-8")), **sentiment_overrides)
    path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")


def copy_project(root: Path, dest: Path) -> Path:
    """The pipeline files of the checkout at ``root`` (dvc.yaml, params.yaml, the sources, the DVC
    config) copied into ``dest``: no data, models, caches or virtual environment."""
    root, dest = Path(root), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        shutil.copy(root / name, dest / name)
    shutil.copytree(root / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / ".dvc", dest / ".dvc",
                    ignore=shutil.ignore_patterns("tmp", "cache", "config.local"))
    return dest


def _project_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "dvc.yaml").is_file():
        raise SystemExit("kexue.tiny: run it from a checkout of the project (no dvc.yaml beside "
                         f"{root / 'src'}); an installed wheel has no pipeline to copy")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kexue.tiny", description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", nargs="?", default="",
                        help="an empty or new directory for the copy (default: a new temp directory)")
    args = parser.parse_args(argv)
    dest = Path(args.dest) if args.dest else Path(tempfile.mkdtemp(prefix="kexue-tiny-"))
    if dest.exists() and any(dest.iterdir()):
        print(f"kexue.tiny: {dest} is not empty; name a new or empty directory", file=sys.stderr)
        return 2
    root = _project_root()
    copy_project(root, dest)
    write_tiny_params(dest)
    env = {**os.environ, "PYTHONPATH": str(dest / "src"), "DVC_NO_ANALYTICS": "1"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=kexue", "-c", "user.email=kexue@localhost", "commit", "-qm",
                 "tiny profile"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True)
    print(f"kexue.tiny: running the tiny profile in {dest}", file=sys.stderr)
    code = subprocess.run(["dvc", "repro"], cwd=dest, env=env).returncode
    if code == 0:
        print(f"kexue.tiny: done; metrics in {dest / 'metrics'}, the table in "
              f"{dest / 'reports' / 'results.md'}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
