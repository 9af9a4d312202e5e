"""A trained tagger (:mod:`kexue.tagging`'s network, saved by ``train_tagger``) as a tool: texts
in, one tag per character out, Viterbi under the CRF; its throughput, a bfloat16 copy, and the
confusion rows the evaluation plots."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
from keras import ops

from kexue.io import read_json
from kexue.layers.crf import viterbi_decode
from kexue.tagging import TaggerConfig, average_members, build_model
from kexue.text.tagging_features import Features, pieces


class Tagger:
    """A trained tagger: texts in, one tag per character out (Viterbi for the CRF head)."""

    def __init__(self, model_dir: str | Path, batch_chars: int = 16384, family: str = "segment"):
        model_dir = Path(model_dir)
        for name in ("model.keras", "vocab.json", "tags.json", "train_info.json"):
            if not (model_dir / name).is_file():
                raise FileNotFoundError(f"{model_dir / name} not found: train the model first "
                                        f"(`dvc repro train@{family}`)")
        # compile=False: the CRF loss is a bound method of the layer, not a saved object, and
        # inference needs no optimizer
        self.model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True,
                                             compile=False)
        self.features = Features.load(model_dir)
        self.tag_names: list[str] = read_json(model_dir / "tags.json")
        self.info = read_json(model_dir / "train_info.json")
        if self.info["config"].get("inference_dtype") == "bfloat16":
            self.model = _in_bfloat16(self.model, self.info["config"])
        self.maxlen = self.info["config"]["maxlen"]
        self.crf = self.info["config"]["head"] == "crf"
        self.transitions = (ops.convert_to_numpy(self.model.get_layer("crf").transitions)
                            if self.crf else None)
        self.batch_chars = batch_chars
        self._forward: Callable | None = None

    def _scores(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        if self._forward is None:
            import tensorflow as tf

            self._forward = tf.function(lambda x: self.model(x, training=False),
                                        reduce_retracing=True)
        x = inputs if len(inputs) > 1 else inputs[0]
        return self._forward(x).numpy().astype(np.float32)

    def tag(self, texts: Sequence[str]) -> list[list[str]]:
        """One tag name per character of each text (whitespace characters included)."""
        spans = [(i, s, e) for i, text in enumerate(texts) for s, e in pieces(text, self.maxlen)]
        encoded = [self.features.encode(texts[i][s:e]) for i, s, e in spans]
        order = sorted(range(len(spans)), key=lambda k: (spans[k][2] - spans[k][1], k))
        result = [[""] * len(t) for t in texts]
        size_of = [e - s for _, s, e in spans]
        start = 0
        while start < len(order):
            # sorted by length, so the piece just added is the batch's longest
            end = start + 1
            while end < len(order) and (end - start + 1) * size_of[order[end]] <= self.batch_chars:
                end += 1
            chunk = order[start:end]
            longest = size_of[chunk[-1]]
            lengths = np.array([spans[k][2] - spans[k][1] for k in chunk])
            inputs = tuple(_pad_to([encoded[k][j] for k in chunk], longest)
                           for j in range(len(encoded[chunk[0]])))
            scores = self._scores(inputs)  # (batch, T, num_tags)
            if self.crf:
                paths = viterbi_decode(scores, self.transitions, lengths)
            else:
                paths = [scores[b, : lengths[b]].argmax(-1) for b in range(len(chunk))]
            for k, path in zip(chunk, paths, strict=True):
                i, s, _ = spans[k]
                result[i][s : s + len(path)] = [self.tag_names[t] for t in path]
            start += len(chunk)
        return result

    def throughput(self, texts: Sequence[str]) -> dict:
        """Characters per second of :meth:`tag` on ``texts`` (after one warm-up call)."""
        self.tag(texts[: min(len(texts), 64)])
        begin = time.perf_counter()
        self.tag(texts)
        seconds = time.perf_counter() - begin
        chars = sum(len(t) for t in texts)
        return {"chars": chars, "seconds": round(seconds, 3),
                "chars_per_second": round(chars / seconds, 1)}


def _in_bfloat16(model: keras.Model, config: dict) -> keras.Model:
    """The same network computing in bfloat16 (weights kept in float32). On CPUs with bfloat16
    matrix units (AVX512-BF16 / AMX) oneDNN runs the convolutions several times faster; the
    decoded tags change only where two paths score within bfloat16 rounding."""
    from kexue.config import parse

    optimizer = config["fit"]["optimizer"]  # JSON turned the schedule's step keys into strings
    optimizer = {**optimizer, "schedule": {int(k): v for k, v in optimizer["schedule"].items()}}
    config = {**config, "fit": {**config["fit"], "optimizer": optimizer}}
    cfg = parse(TaggerConfig, config, "train_info.config")
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)] or [model]
    sizes = {"num_tags": members[0].get_layer("tag_scores").units,
             "vocab_size": members[0].get_layer("char_embedding").input_dim,
             "bigram_vocab_size": (members[0].get_layer("bigram_embedding").input_dim
                                   if cfg.bigrams else 0)}
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        copies = []
        for member in members:
            copy = build_model(cfg, name=member.name, **sizes)
            copy.set_weights(member.get_weights())
            copies.append(copy)
    finally:
        keras.config.set_dtype_policy(previous)
    if len(copies) == 1:
        return copies[0]
    return average_members(copies, cfg.head == "crf", model.name)


def tag_confusion_rows(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                       stride: int = 50) -> list[dict]:
    """``{"actual", "predicted"}`` rows for DVC's confusion plot from every ``stride``-th
    character (the full test set would be ~170k rows in git)."""
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True)
             for g, p in zip(gs, ps, strict=True)]
    return [{"actual": g, "predicted": p} for g, p in pairs[::stride]]


def _pad_to(arrays: list[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(arrays), length), dtype=np.int32)
    for row, array in enumerate(arrays):
        out[row, : len(array)] = array
    return out
