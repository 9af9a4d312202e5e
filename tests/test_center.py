"""Center loss with the labels as a model input (kexue.layers.center, kexue.families.center)."""

import dataclasses

import keras
import numpy as np
import pytest

from kexue.layers.center import CenterDistance, center_loss, compile_losses, with_center_loss


def _toy_classifier(dim=3, classes=4, seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input(shape=(5,), name="images")
    features = keras.layers.Dense(dim, name="features")(x)
    probs = keras.layers.Dense(classes, activation="softmax", name="probs")(features)
    return keras.Model(x, probs, name="toy")


def _batch(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)).astype("float32"), rng.integers(0, 4, size=n).astype("int32")


def test_distance_equals_closed_form_on_a_hand_made_batch():
    layer = CenterDistance(3)
    features = np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5], [1.0, 1.0]], dtype="float32")
    labels = np.array([0, 2, 1, 0], dtype="int32")
    layer.build([(None, 2), (None,)])
    centers = np.array([[1.0, 0.0], [2.0, 2.0], [-1.0, -1.0]], dtype="float32")
    layer.centers.assign(centers)
    got = keras.ops.convert_to_numpy(layer([features, labels]))
    # by hand: (0² + 2²), (1² + 0²), (1² + 1.5²), (0² + 1²)
    np.testing.assert_allclose(got, [4.0, 1.0, 3.25, 1.0], rtol=1e-6)
    assert center_loss(features, labels, centers) == pytest.approx((4.0 + 1.0 + 3.25 + 1.0) / 4)


def test_training_loss_is_cross_entropy_plus_weighted_center_loss():
    classifier = _toy_classifier()
    weight = 0.3
    model = with_center_loss(classifier, "features", weight)
    model.compile(optimizer="sgd", **compile_losses(weight))
    centers = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")
    model.get_layer("center").centers.assign(centers)
    x, y = _batch()
    targets = np.eye(4, dtype="float32")[y]
    loss = model.evaluate({"images": x, "labels": y}, {"probs": targets, "center": np.zeros(len(y))},
                          batch_size=len(y), verbose=0, return_dict=True)["loss"]
    probs = classifier.predict(x, verbose=0)
    feats = keras.Model(classifier.input, classifier.get_layer("features").output).predict(x, verbose=0)
    cross_entropy = -np.mean(np.log(probs[np.arange(len(y)), y]))
    assert loss == pytest.approx(cross_entropy + weight * center_loss(feats, y, centers), rel=1e-5)


def test_training_moves_features_and_centres_together():
    """With λ > 0 the centre table is trained: it leaves zero, and the distance falls."""
    classifier = _toy_classifier()
    model = with_center_loss(classifier, "features", 1.0)
    model.compile(optimizer=keras.optimizers.SGD(0.1), **compile_losses(1.0))
    x, y = _batch(n=64, seed=3)
    data = ({"images": x, "labels": y}, {"probs": np.eye(4, dtype="float32")[y], "center": np.zeros(64)})
    before = model.evaluate(*data, verbose=0, return_dict=True)["center_loss"]
    model.fit(*data, epochs=30, batch_size=16, verbose=0)
    after = model.evaluate(*data, verbose=0, return_dict=True)["center_loss"]
    assert np.abs(keras.ops.convert_to_numpy(model.get_layer("center").centers)).sum() > 0
    assert after < before


def test_labels_are_not_needed_at_inference_and_both_models_round_trip_in_safe_mode(tmp_path):
    classifier = _toy_classifier()
    model = with_center_loss(classifier, "features", 0.5)
    model.get_layer("center").centers.assign(np.ones((4, 3), "float32"))
    x, y = _batch()
    from_training = keras.ops.convert_to_numpy(model({"images": x, "labels": y})["probs"])
    # the classifier shares the layers: same probabilities, from the images alone
    assert [t.name for t in classifier.inputs] == ["images"]
    np.testing.assert_allclose(classifier.predict(x, verbose=0), from_training, rtol=1e-6)
    classifier.save(tmp_path / "classifier.keras")
    model.save(tmp_path / "train.keras")
    loaded = keras.saving.load_model(tmp_path / "classifier.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), from_training, rtol=1e-6)
    loaded_train = keras.saving.load_model(tmp_path / "train.keras", safe_mode=True, compile=False)
    out = loaded_train({"images": x, "labels": y})
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["center"]),
                               keras.ops.convert_to_numpy(model({"images": x, "labels": y})["center"]),
                               rtol=1e-6)


def test_negative_weight_and_bad_class_count_are_refused():
    with pytest.raises(ValueError, match="weight must be >= 0"):
        with_center_loss(_toy_classifier(), "features", -1.0)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        CenterDistance(0)


def test_compactness_and_feature_scores_on_known_clusters():
    from kexue.families.center import compactness, feature_scores

    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    feats = np.array([[1.0, 0.0], [-1.0, 0.0], [10.0, 2.0], [10.0, -2.0]])
    labels = np.array([0, 0, 1, 1])
    got = compactness(feats, labels, means)
    assert got == {"intra": 1.5, "inter": 10.0, "ratio": 0.15}
    # scaling every vector leaves the ratio alone
    assert compactness(feats * 3, labels, means * 3)["ratio"] == pytest.approx(0.15)
    scores = feature_scores((feats, labels), (feats, labels), (feats[::-1], labels[::-1]), [1, 3])
    assert scores["nearest_centroid_accuracy"] == {"valid": 1.0, "test": 1.0}
    assert scores["knn"]["k"] == 1 and scores["knn"]["test"] == 1.0


def test_family_config_rejects_tta_and_an_empty_k_grid():
    from kexue.config import ConfigError, load_section
    from kexue.families.center import Config, check_config

    cfg = load_section("center", Config)
    with pytest.raises(ConfigError, match="center.tta must be false"):
        check_config(dataclasses.replace(cfg, tta=True))
    with pytest.raises(ConfigError, match="knn_neighbours"):
        check_config(dataclasses.replace(cfg, knn_neighbours=[]))
    with pytest.raises(ConfigError, match="center_weights"):
        check_config(dataclasses.replace(cfg, center_weights=[0.01, 0.0]))
