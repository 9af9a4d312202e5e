"""The image family's model and the Fashion-MNIST idx reader (fast: tiny nets, fake files)."""

import dataclasses
import gzip
import json

import keras
import numpy as np
import pytest

from kexue.config import ConfigError, parse
from kexue.corpora.fashion_mnist import CLASSES, IdxError, load_split, read_idx, train_valid_split
from kexue.families.image import Config, build_model, time_to_reach

PARAMS = {
    "arch": "mobilenet", "width": 4, "blocks": 1, "activation": "relu", "batch_norm": True,
    "flip": True, "shift": 0.1, "erasing": 0.5, "dropout": 0.1, "precision": "float32", "xla": False,
    "valid_size": 10, "limit_train": 0, "warmup_epochs": 0.0, "momentum": 0.0, "label_smoothing": 0.0, "tta": False,
    "fit": {"epochs": 1, "batch_size": 8, "seed": 0, "deterministic": False, "distribute": "none",
            "optimizer": {"name": "adam", "learning_rate": 1e-3, "schedule": {}, "weight_decay": 0.0,
                          "global_clipnorm": 0.0, "gradient_accumulation_steps": 1,
                          "use_ema": False, "ema_momentum": 0.99, "lr_multipliers": {},
                          "lookahead_k": 0, "lookahead_alpha": 0.5}},
}


def make_config(**changes) -> Config:
    return dataclasses.replace(parse(Config, PARAMS, "image"), **changes)


def idx_bytes(array: np.ndarray, magic: bytes | None = None) -> bytes:
    header = magic or bytes([0, 0, 0x08, array.ndim])
    return header + b"".join(int(n).to_bytes(4, "big") for n in array.shape) + array.tobytes()


@pytest.mark.parametrize("arch", ["mobilenet", "resnet", "vgg"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_model_outputs_class_probabilities(arch, batch_norm):
    model = build_model(make_config(arch=arch, batch_norm=batch_norm))
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    probs = np.asarray(model(images, training=False))
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    names = [layer.name for layer in model.layers]
    assert {"random_flip", "random_shift", "random_erasing"} <= set(names)
    assert len(names) == len(set(names))


def test_augmentation_only_when_training():
    model = build_model(make_config(arch="resnet", dropout=0.0, batch_norm=False))
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    first = np.asarray(model(images, training=False))
    np.testing.assert_array_equal(first, np.asarray(model(images, training=False)))
    assert not np.allclose(first, np.asarray(model(images, training=True)), atol=1e-7)


def test_mixed_bfloat16_keeps_float32_probabilities():
    model = build_model(make_config(precision="mixed_bfloat16"))
    probs = model(np.zeros((2, 28, 28), np.uint8), training=False)
    assert keras.backend.standardize_dtype(probs.dtype) == "float32"
    assert model.get_layer("stem").compute_dtype == "bfloat16"


@pytest.fixture
def without_op_determinism():
    """TensorFlow's op determinism off for the test (an earlier test in the same worker may have
    turned it on; Keras turns XLA off under it), restored afterwards."""
    from tensorflow.python.framework import config

    was = config.is_op_determinism_enabled()
    config.disable_op_determinism()
    yield
    if was:
        config.enable_op_determinism()


@pytest.mark.parametrize("xla", [False, True])
def test_xla_switch_reaches_the_compiled_training_step(xla, without_op_determinism):
    from kexue.families.image import compile_model

    cfg = make_config(arch="vgg", xla=xla, erasing=0.0, shift=0.0)
    model = build_model(cfg)
    compile_model(model, cfg, steps_per_epoch=2)
    assert model.jit_compile is xla
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 28, 28), dtype=np.uint8)
    targets = keras.utils.to_categorical(rng.integers(0, 10, 16), 10)
    history = model.fit(images, targets, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_xla_that_keras_would_drop_is_a_config_error(without_op_determinism):
    from kexue.families.image import compile_model

    cfg = make_config(arch="vgg", xla=True, shift=0.1)  # Keras's RandomTranslation: no XLA kernel
    with pytest.raises(ConfigError, match=r"image\.xla = true.*random_shift.*image\.shift: 0"):
        compile_model(build_model(cfg), cfg, steps_per_epoch=2)


def test_bad_config_names_the_key():
    with pytest.raises(ConfigError, match=r"image\.arch = 'alexnet'"):
        parse(Config, {**PARAMS, "arch": "alexnet"}, "image")
    with pytest.raises(ConfigError, match=r"image\.shift = 0\.9"):
        parse(Config, {**PARAMS, "shift": 0.9}, "image")
    with pytest.raises(ConfigError, match=r"unknown key 'image\.widht'.*'width'"):
        parse(Config, {**PARAMS, "widht": 8}, "image")
    with pytest.raises(ConfigError, match=r"image\.arch = 'alexnet'"):  # built in Python
        build_model(make_config(arch="alexnet"))
    with pytest.raises(ConfigError, match=r"image\.width = 0"):
        build_model(make_config(width=0))


def test_reader_parses_idx_files(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    labels = np.array([3, 9], np.uint8)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(idx_bytes(images))
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(idx_bytes(labels))
    got_images, got_labels = load_split(tmp_path, "test")
    assert got_images.dtype == np.uint8 and got_images.shape == (2, 28, 28)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    (tmp_path / "plain").write_bytes(idx_bytes(labels))  # uncompressed works too
    np.testing.assert_array_equal(read_idx(tmp_path / "plain", ndim=1), labels)


def test_reader_errors_clearly(tmp_path):
    labels = np.array([1, 2, 3], np.uint8)
    (tmp_path / "bad_magic").write_bytes(idx_bytes(labels, magic=b"\x00\x00\x0d\x01"))
    with pytest.raises(IdxError, match="bad magic number 0x00000d01"):
        read_idx(tmp_path / "bad_magic")
    (tmp_path / "short").write_bytes(idx_bytes(labels)[:-1])
    with pytest.raises(IdxError, match="implies"):
        read_idx(tmp_path / "short")
    (tmp_path / "labels").write_bytes(idx_bytes(labels))
    with pytest.raises(IdxError, match="1 dimensions in the header, expected 3"):
        read_idx(tmp_path / "labels", ndim=3)
    (tmp_path / "broken.gz").write_bytes(b"not gzip at all")
    with pytest.raises(IdxError, match="cannot read"):
        read_idx(tmp_path / "broken.gz")
    with pytest.raises(FileNotFoundError, match="acquire"):
        read_idx(tmp_path / "missing.gz")
    with pytest.raises(ValueError, match="train, test"):
        load_split(tmp_path, "valid")


def test_valid_split_is_stratified_and_disjoint():
    labels = np.repeat(np.arange(10), 20)
    train, valid = train_valid_split(labels, 30, seed=0)
    assert len(valid) == 30 and len(train) == 170 and not set(train) & set(valid)
    assert np.all(np.bincount(labels[valid], minlength=10) == 3)
    np.testing.assert_array_equal(valid, train_valid_split(labels, 30, seed=0)[1])


def test_time_to_reach():
    curve, seconds = [0.90, 0.94, 0.951], [10.0, 20.0, 30.0]
    assert time_to_reach(curve, seconds, 0.94) == 20.0
    assert time_to_reach(curve, seconds, 0.95) == 30.0
    assert time_to_reach(curve, seconds, 0.96) is None


# ---------------------------------------------------------------------------------------------
# training, evaluation, peers, fine-tuning, CLI (tiny nets on fake idx files)


def write_fake_fashion(root, train_per_class=12, test_per_class=4, seed=0):
    """Fake Fashion-MNIST idx files whose class is readable from the image: class c lights up
    row block c (so a tiny net can learn it), plus noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = np.repeat(np.arange(10), per_class).astype(np.uint8)
        images = rng.integers(0, 40, (len(labels), 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c + 4: 2 * c + 7, 4:24] = 250
        image_file, label_file = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                                  "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}[split]
        with gzip.open(root / image_file, "wb") as handle:
            handle.write(idx_bytes(images))
        with gzip.open(root / label_file, "wb") as handle:
            handle.write(idx_bytes(labels))
    return root


def tiny_train_config(**changes) -> Config:
    cfg = make_config(arch="resnet", width=4, blocks=1, valid_size=20, erasing=0.0, dropout=0.0,
                      warmup_epochs=0.5, momentum=0.9, label_smoothing=0.1, tta=True)
    opt = dataclasses.replace(cfg.fit.optimizer, name="sgd", learning_rate=0.05)
    cfg = dataclasses.replace(cfg, fit=dataclasses.replace(cfg.fit, epochs=2, batch_size=16, optimizer=opt))
    return dataclasses.replace(cfg, **changes)


def test_schedule_warms_up_then_decays_to_zero():
    from kexue.families.image import schedule_knots
    from kexue.optimizers import PiecewiseLinear

    knots = schedule_knots(2.0, 10, 100)
    assert knots == {200: 1.0, 1000: 0.0}
    lr = PiecewiseLinear(0.1, knots)
    assert [round(float(lr(s)), 6) for s in (0, 100, 200, 600, 1000, 1200)] == [0.0, 0.05, 0.1, 0.05, 0.0, 0.0]
    assert schedule_knots(0.0, 3, 10) == {0: 1.0, 30: 0.0}


def test_image_batches_are_reproducible_per_epoch_and_smoothed():
    from kexue.image_data import ImageBatches

    images = np.arange(10 * 28 * 28, dtype=np.int64).reshape(10, 28, 28).astype(np.uint8)
    labels = np.arange(10) % 3
    batches = ImageBatches(images, labels, 4, seed=7, label_smoothing=0.1, classes=3)
    assert len(batches) == 3 and batches.num_examples == 10
    first = [batches[i][0] for i in range(3)]
    assert sorted(np.concatenate([b[:, 0, 0] for b in first]).tolist()) == sorted(images[:, 0, 0].tolist())
    x, y = batches[0]
    np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-6)
    assert np.isclose(y.max(), 0.9 + 0.1 / 3) and np.isclose(y.min(), 0.1 / 3)
    batches.on_epoch_end()  # epoch 1: another order
    second = batches[0][0]
    again = ImageBatches(images, labels, 4, seed=7, label_smoothing=0.1, classes=3)
    again.set_epoch(1)  # a resumed run jumps straight to epoch 1 and sees the same batches
    np.testing.assert_array_equal(second, again[0][0])
    assert not np.array_equal(first[0], second)
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        ImageBatches(images, labels[:9], 4)


def test_config_rejects_a_schedule_and_a_long_warmup():
    cfg = tiny_train_config()
    opt = dataclasses.replace(cfg.fit.optimizer, schedule={10: 1.0})
    with pytest.raises(ConfigError, match=r"schedule must be \{\}.*warmup_epochs"):
        build_model(dataclasses.replace(cfg, fit=dataclasses.replace(cfg.fit, optimizer=opt)))
    with pytest.raises(ConfigError, match=r"warmup_epochs = 2.0 .*fewer than image.fit.epochs = 2"):
        build_model(dataclasses.replace(cfg, warmup_epochs=2.0))


def test_sgd_momentum_is_nesterov():
    from kexue.train import build_optimizer

    cfg = tiny_train_config()
    optimizer = build_optimizer(cfg.fit.optimizer, momentum=0.9)
    assert optimizer.momentum == 0.9 and optimizer.nesterov
    assert build_optimizer(cfg.fit.optimizer).momentum == 0.0  # other families: plain SGD as before


def test_train_evaluate_and_classify_round_trip(tmp_path, monkeypatch, capsys):
    from kexue import cli
    from kexue.families.image import evaluate, train

    data = write_fake_fashion(tmp_path / "fmnist")
    info = train(tiny_train_config(), data, tmp_path / "model", tmp_path / "live", None)
    assert info["monitor"] == "val_accuracy_tta" and info["epochs_run"] == 2
    assert info["train_examples"] == 100 and info["valid_examples"] == 20
    assert len(info["history"]["elapsed_seconds"]) == 2
    assert info["history"]["elapsed_seconds"][1] > info["history"]["elapsed_seconds"][0]
    metrics, rows = evaluate(tmp_path / "model", data)
    assert metrics["test"]["examples"] == 40 and len(rows) == 40
    assert set(metrics["test"]["per_class"]) == set(CLASSES)
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert sum(metrics["items"]["test"]) / 40 == pytest.approx(metrics["test"]["accuracy"], abs=1e-4)
    predicted = [r["predicted"] for r in rows]
    assert np.mean([p == a["actual"] for p, a in zip(predicted, rows, strict=True)]) == \
        pytest.approx(metrics["test"]["accuracy"], abs=1e-4)

    from PIL import Image

    x_test, _ = load_split(data, "test")
    Image.fromarray(x_test[0]).save(tmp_path / "item.png")
    capsys.readouterr()  # drop the training log
    assert cli.main(["classify", str(tmp_path / "item.png"), "--model", str(tmp_path / "model"), "-k", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label"] in CLASSES and len(out["top"]) == 2 and out["top"][0]["label"] == out["label"]
    assert out["top"][0]["prob"] >= out["top"][1]["prob"]


def test_classify_errors_clearly(tmp_path, capsys):
    from kexue import cli

    # the model check comes first (no TensorFlow import): a folder with the files it asks for
    # gets the command to the image, whose errors come next
    fake = tmp_path / "fake_model"
    fake.mkdir()
    for name in cli.MODEL_FILES["classify"]:
        (fake / name).write_bytes(b"")
    model = ["--model", str(fake)]
    assert cli.main(["classify", str(tmp_path / "missing.png"), *model]) == 1
    assert "missing.png: no such image file" in capsys.readouterr().err
    (tmp_path / "text.png").write_text("not an image")
    assert cli.main(["classify", str(tmp_path / "text.png"), *model]) == 1
    assert "not a readable image" in capsys.readouterr().err
    from PIL import Image

    Image.new("L", (28, 28)).save(tmp_path / "ok.png")
    assert cli.main(["classify", str(tmp_path / "ok.png"), "--model", str(tmp_path / "none")]) == 1
    assert "train the model first" in capsys.readouterr().err


def test_read_image_resizes_and_inverts_light_backgrounds(tmp_path):
    from PIL import Image

    from kexue.image_data import read_image

    photo = np.full((56, 56, 3), 255, np.uint8)  # a dark square on white, in colour, twice the size
    photo[14:42, 14:42] = 0
    Image.fromarray(photo).save(tmp_path / "photo.png")
    auto = read_image(tmp_path / "photo.png")
    assert auto.shape == (28, 28) and auto.dtype == np.uint8
    assert auto[0, 0] == 0 and auto[14, 14] == 255  # inverted: light object on black, as Fashion-MNIST
    kept = read_image(tmp_path / "photo.png", invert="no")
    assert kept[0, 0] == 255 and kept[14, 14] == 0
    dark = np.zeros((28, 28), np.uint8)
    dark[10:18, 10:18] = 200
    Image.fromarray(dark).save(tmp_path / "dark.png")
    np.testing.assert_array_equal(read_image(tmp_path / "dark.png"), dark)  # already Fashion-MNIST-like


def test_confident_errors_orders_wrong_predictions_by_confidence():
    from kexue.families.image_errors import confident_errors

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.95, 0.05]])
    y_true = np.array([0, 0, 1, 1, 1])
    # wrong: 1 (0.8 on class 1), 2 (0.6 on class 0), 4 (0.95 on class 0)
    assert confident_errors(probs, y_true, 5).tolist() == [4, 1, 2]
    assert confident_errors(probs, y_true, 2).tolist() == [4, 1]


def test_peers_score_on_the_same_split(tmp_path):
    from kexue.peers.image import BaselineConfig, baselines

    data = write_fake_fashion(tmp_path / "fmnist")
    cfg = BaselineConfig(logistic_c=1.0, logistic_max_iter=50, adaboost_estimators=3, adaboost_depth=2,
                         adaboost_learning_rate=0.5, forest_estimators=5, forest_max_depth=0, jobs=1, seed=0)
    peers = baselines(cfg, data, tiny_train_config())
    assert set(peers) == {"logistic_regression", "adaboost_trees", "random_forest"}
    for result in peers.values():
        assert result["test"]["examples"] == 40 and result["train_seconds"] >= 0
    assert peers["logistic_regression"]["test"]["accuracy"] == 1.0  # the fake classes are linearly separable
    items = peers["random_forest"]["items"]  # right or wrong per image, in the split's order
    assert len(items["test"]) == 40 and set(items["test"]) <= {0, 1}
    assert sum(items["test"]) / 40 == peers["random_forest"]["test"]["accuracy"]
    skipped = baselines(dataclasses.replace(cfg, adaboost_estimators=0, forest_estimators=0), data,
                        tiny_train_config())
    assert set(skipped) == {"logistic_regression"}


def test_finetune_pretrains_then_compares_with_scratch(tmp_path):
    from kexue.families.finetune import FinetuneConfig, finetune, with_new_head

    base = build_model(tiny_train_config())
    head = with_new_head(base, 5, "new")
    assert head.output.shape == (None, 5)
    assert head.get_layer("stem") is base.get_layer("stem")  # the backbone is shared, not copied

    data = write_fake_fashion(tmp_path / "fmnist")
    cfg = FinetuneConfig(pretrain_classes=[0, 1, 2, 3, 4], target_classes=[5, 6, 7, 8, 9],
                         labels_per_class=6, valid_per_class=2, pretrain_epochs=1, epochs=1,
                         max_epochs=2, min_gain=1.0, batch_size=10, learning_rate=0.02,
                         lr_multipliers={"stem*": 0.1}, seed=0)
    result = finetune(cfg, tiny_train_config(), data)
    # min_gain 1.0 cannot be met: each arm tries the 1- and the 2-epoch budget and stops there,
    # the same rule for both
    for arm in ("finetuned", "scratch"):
        assert [b["epochs"] for b in result[arm]["budgets"]] == [1, 2]
        assert result[arm]["stopped"] == "gain_below_min_gain" and not result[arm]["still_improving"]
        kept = max(result[arm]["budgets"], key=lambda b: b["valid_accuracy"])  # first of a tie
        assert result[arm]["epochs"] == kept["epochs"]
    again = finetune(cfg, tiny_train_config(), data)
    for arm in ("finetuned", "scratch"):  # seeded end to end: the same accuracies again
        assert again[arm]["test_accuracy"] == result[arm]["test_accuracy"]
        assert again[arm]["budgets"] == result[arm]["budgets"]
    assert result["task"] == {"classes": CLASSES[5:], "train_images": 30, "valid_images": 10, "test_images": 20}
    assert result["pretrain"]["train_images"] == 50
    assert result["finetuned"]["layers_copied"] == len([la for la in base.layers if la.weights]) - 1
    assert result["gain_points"] == pytest.approx(
        100 * (result["finetuned"]["test_accuracy"] - result["scratch"]["test_accuracy"]), abs=0.01)
    # the paired comparison scores the kept runs on the same 20 test images
    block = result["comparison"]
    assert block["peer"] == "from_scratch" and block["test"]["n"] == 20 and block["valid"]["n"] == 10
    assert block["test"]["kexue"] == result["finetuned"]["test_accuracy"]
    assert block["test"]["peer"] == result["scratch"]["test_accuracy"]
    assert block["test"]["ci95"][0] <= block["test"]["delta"] <= block["test"]["ci95"][1]
    with pytest.raises(ConfigError, match="max_epochs = 1 is below"):
        finetune(dataclasses.replace(cfg, epochs=2, max_epochs=1), tiny_train_config(), data)
    with pytest.raises(ConfigError, match=r"classes \[4\] are both"):
        finetune(dataclasses.replace(cfg, target_classes=[4, 5]), tiny_train_config(), data)
    with pytest.raises(ValueError, match="fewer than the 50 asked for"):
        finetune(dataclasses.replace(cfg, labels_per_class=50), tiny_train_config(), data)


def test_the_budget_walk_stops_when_a_budget_gains_too_little_and_keeps_the_best():
    from kexue.families.finetune import budgets, walk_budgets

    assert budgets(30, 120) == [30, 60, 120] and budgets(30, 100) == [30, 60, 100]
    assert budgets(5, 5) == [5]

    def trainer(scores):
        tried = []

        def train(epochs):
            tried.append(epochs)
            return f"model{epochs}", scores[epochs], epochs - 1
        return train, tried

    # 60 gains 0.02 >= 0.005, 120 gains 0.001 < 0.005: stop after 120, keep it (best on valid)
    train, tried = trainer({30: 0.90, 60: 0.92, 120: 0.921})
    walk = walk_budgets(train, 30, 240, 0.005)
    assert tried == [30, 60, 120] and walk["stopped"] == "gain_below_min_gain"
    assert walk["model"] == "model120" and walk["kept"]["epochs"] == 120
    assert not walk["still_improving"]
    # a longer budget that scores worse ends the walk and the shorter one is kept
    train, tried = trainer({30: 0.90, 60: 0.85, 120: 0.99})
    walk = walk_budgets(train, 30, 120, 0.005)
    assert tried == [30, 60] and walk["model"] == "model30"
    assert [r["valid_accuracy"] for r in walk["runs"]] == [0.9, 0.85]
    # still gaining at the cap: it says so, and never trains past the cap
    train, tried = trainer({30: 0.80, 60: 0.85, 120: 0.90})
    walk = walk_budgets(train, 30, 120, 0.005)
    assert tried == [30, 60, 120] and walk["stopped"] == "max_epochs" and walk["still_improving"]
    assert walk["kept"] == {"epochs": 120, "best_epoch": 119, "valid_accuracy": 0.9}


def test_tta_probe_shift_moves_pixels_and_fills_zeros():
    from bench.image_tta import VIEW_SETS, shifted

    x = np.arange(1, 10).reshape(1, 3, 3)
    np.testing.assert_array_equal(shifted(x, 1, 0)[0], [[0, 0, 0], [1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(shifted(x, 0, -1)[0], [[2, 3, 0], [5, 6, 0], [8, 9, 0]])
    np.testing.assert_array_equal(shifted(x, -1, 1)[0], [[0, 4, 5], [0, 7, 8], [0, 0, 0]])
    np.testing.assert_array_equal(shifted(x, 0, 0), x)
    assert {name: len(v) for name, v in VIEW_SETS.items()} == {
        "flip": 1, "flip_cross1": 5, "flip_grid1": 9, "flip_grid2": 25}
