"""The image family's peers (stage ``baselines@image``): scikit-learn classifiers of the Zalando
benchmark — multinomial logistic regression, AdaBoost over shallow trees, a random forest — on
the classifier's own train / valid split, pixels / 255 as 784 features."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kexue.corpora.fashion_mnist import load_split
from kexue.families.image import Config as NetworkConfig
from kexue.families.image import classification_scores
from kexue.image_data import load_train_valid

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]


@dataclass(frozen=True)
class BaselineConfig:
    logistic_c: float = field(metadata={"min": 0.0})  # inverse L2 strength of multinomial logistic regression; 0 = skip it
    logistic_max_iter: int = field(metadata={"min": 1})
    adaboost_estimators: int = field(metadata={"min": 0})  # boosting rounds (SAMME) over shallow trees; 0 = skip
    adaboost_depth: int = field(metadata={"min": 1})  # depth of each boosted tree
    adaboost_learning_rate: float = field(metadata={"min": 0.0})
    forest_estimators: int = field(metadata={"min": 0})  # random-forest trees; 0 = skip
    forest_max_depth: int = field(metadata={"min": 0})  # 0 = grown until pure
    jobs: int = field(metadata={"min": 1})  # processes for the forest
    seed: int


def baselines(cfg: BaselineConfig, data_dir: str | Path, network: NetworkConfig) -> dict:
    """scikit-learn peers of the Zalando benchmark on the image family's train / valid split
    (pixels / 255 as 784 features): accuracy on valid and test, and their training seconds.
    ``network`` (the ``image`` section, read by the stage) fixes the split."""
    from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    image_cfg = network
    (x_train, y_train), (x_valid, y_valid) = load_train_valid(data_dir, image_cfg.valid_size,
                                                             image_cfg.fit.seed, image_cfg.limit_train)
    x_test, y_test = load_split(data_dir, "test")
    flat = {name: x.reshape(len(x), -1).astype(np.float32) / 255.0
            for name, x in (("train", x_train), ("valid", x_valid), ("test", x_test))}
    models = {}
    if cfg.logistic_c > 0:
        models["logistic_regression"] = LogisticRegression(C=cfg.logistic_c, max_iter=cfg.logistic_max_iter)
    if cfg.adaboost_estimators > 0:
        models["adaboost_trees"] = AdaBoostClassifier(
            DecisionTreeClassifier(max_depth=cfg.adaboost_depth, random_state=cfg.seed),
            n_estimators=cfg.adaboost_estimators, learning_rate=cfg.adaboost_learning_rate,
            random_state=cfg.seed)
    if cfg.forest_estimators > 0:
        models["random_forest"] = RandomForestClassifier(
            n_estimators=cfg.forest_estimators, max_depth=cfg.forest_max_depth or None,
            n_jobs=cfg.jobs, random_state=cfg.seed)
    peers = {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(flat["train"], y_train)
        seconds = time.perf_counter() - start
        predicted = {split: model.predict(flat[split]) for split in ("valid", "test")}
        peers[name] = {
            "test": classification_scores(y_test, predicted["test"]),
            "valid": {"accuracy": round(float(np.mean(predicted["valid"] == y_valid)), 4)},
            # right (1) or wrong (0) per image, for the paired bootstrap of evaluate_image
            "items": {"valid": (predicted["valid"] == y_valid).astype(int).tolist(),
                      "test": (predicted["test"] == y_test).astype(int).tolist()},
            "train_seconds": round(seconds, 1),
            "params": {k: v for k, v in model.get_params().items()
                       if k in ("C", "max_iter", "n_estimators", "learning_rate", "max_depth")},
        }
        for split in ("test",):  # keep the file short: per-class rows only for the network
            peers[name][split].pop("per_class")
    return peers
