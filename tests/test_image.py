"""The image family's model and the Fashion-MNIST idx reader (fast: tiny nets, fake files)."""

import dataclasses
import gzip

import keras
import numpy as np
import pytest

from kexue.config import ConfigError, parse
from kexue.corpora.fashion_mnist import IdxError, load_split, read_idx, train_valid_split
from kexue.families.image import Config, build_model, time_to_reach

PARAMS = {
    "arch": "mobilenet", "width": 4, "blocks": 1, "activation": "relu", "batch_norm": True,
    "flip": True, "shift": 0.1, "erasing": 0.5, "dropout": 0.1, "precision": "float32",
    "valid_size": 10,
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


@pytest.mark.parametrize("arch", ["mobilenet", "resnet"])
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


def test_bad_config_names_the_key():
    with pytest.raises(ConfigError, match=r"image\.arch = 'vgg'"):
        parse(Config, {**PARAMS, "arch": "vgg"}, "image")
    with pytest.raises(ConfigError, match=r"image\.shift = 0\.9"):
        parse(Config, {**PARAMS, "shift": 0.9}, "image")
    with pytest.raises(ConfigError, match=r"unknown key 'image\.widht'.*'width'"):
        parse(Config, {**PARAMS, "widht": 8}, "image")
    with pytest.raises(ConfigError, match=r"image\.arch = 'vgg'"):  # built in Python
        build_model(make_config(arch="vgg"))
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
