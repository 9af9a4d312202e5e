"""A trained sentiment model as a tool: the model folder loaded with its vocabularies (and word
lexicon), P(positive) for any texts, per ensemble member if asked — for evaluation, saliency and
the ``kexue sentiment`` command."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from kexue import losses, optimizers  # noqa: F401  (registered on import: the saved loss and optimizer load)
from kexue.batches import SequenceBatches
from kexue.corpora.reviews import LABELS
from kexue.families.sentiment_inputs import add_words, encode, word_ids
from kexue.io import read_json
from kexue.layers import pooling  # noqa: F401  (registers MaskedGlobalMaxPooling1D)
from kexue.text.vocab import Vocab

__all__ = ["LABELS", "SentimentClassifier"]


class SentimentClassifier:
    """A trained sentiment model with its vocabulary, for evaluation and the CLI."""

    def __init__(self, model_dir: str | Path, batch_size: int = 256):
        model_dir = Path(model_dir)
        for name in ("model.keras", "vocab.json", "train_info.json"):
            if not (model_dir / name).is_file():
                raise FileNotFoundError(
                    f"{model_dir / name} not found: train the model first (`dvc repro train@sentiment`)"
                )
        self.model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
        self.vocab = Vocab.load(model_dir / "vocab.json")
        self.info = read_json(model_dir / "train_info.json")
        self.maxlen = self.info["config"]["maxlen"]
        self.bigram_vocab = (Vocab.load(model_dir / "bigram_vocab.json")
                             if self.info["config"].get("bigrams") else None)
        self.word_vocab = self.segment = None
        if self.info["config"].get("embeddings", "none") != "none":
            from kexue.text.tokenized import load_segmenter

            self.word_vocab = Vocab.load(model_dir / "word_vocab.json")
            self.segment = load_segmenter(model_dir / "lexicon")
        self.batch_size = batch_size
        self._forward = None

    def member_names(self) -> list[str]:
        """The ensemble's member sub-models (empty for a single model)."""
        return [layer.name for layer in self.model.layers if isinstance(layer, keras.Model)]

    def _traced(self):
        """The forward pass as one traced graph for any batch size and length (an eager RNN
        runs its time steps one Python call at a time): ids in, ``(batch, members)``
        P(positive) out, one column per ensemble member (one column for a single model); the
        ensemble's output is their mean, as its ``Average`` layer computes it."""
        if self._forward is None:
            import tensorflow as tf

            members = [self.model.get_layer(name) for name in self.member_names()] or [self.model]
            n_inputs = len(self.model.inputs)

            def forward(ids):
                x = tuple(ids) if n_inputs > 1 else ids[0]
                return tf.concat([member(x, training=False) for member in members], axis=-1)

            self._forward = tf.function(
                forward, input_signature=[[tf.TensorSpec([None, None], tf.int32)] * n_inputs])
        return self._forward

    def member_probs(self, texts: list[str]) -> np.ndarray:
        """P(positive) of each ensemble member for each text, ``(len(texts), members)``, in
        input order (one column for a single model)."""
        columns = max(len(self.member_names()), 1)
        if not texts:
            return np.zeros((0, columns), dtype=np.float32)
        words = (word_ids(self.word_vocab, self.segment, texts, self.maxlen)
                 if self.word_vocab is not None else None)
        batches = SequenceBatches(add_words(encode(self.vocab, texts, self.maxlen, self.bigram_vocab),
                                             words), None, self.batch_size, shuffle=False)
        forward = self._traced()
        out = np.concatenate([forward([np.asarray(a, np.int32) for a in _as_tuple(batches[i][0])]).numpy()
                              for i in range(len(batches))])
        probs = np.empty((len(texts), columns), dtype=np.float32)
        probs[batches.order()] = out
        return probs

    def predict_proba(self, texts: list[str], member: str | None = None) -> np.ndarray:
        """P(positive) for each text, in input order; ``member`` asks one ensemble member."""
        probs = self.member_probs(texts)
        if member is None:
            return probs.mean(axis=1)
        names = self.member_names()
        if member not in names:
            raise ValueError(f"no ensemble member {member!r}: the model has {names or 'none'}")
        return probs[:, names.index(member)]

    def throughput(self, texts: list[str]) -> dict:
        """Reviews per second of :meth:`predict_proba` on ``texts``, every member included
        (after one warm-up call on the first 64: the graph is traced once)."""
        self.member_probs(texts[:64])
        begin = time.perf_counter()
        self.member_probs(texts)
        seconds = time.perf_counter() - begin
        return {"examples": len(texts), "seconds": round(seconds, 3),
                "examples_per_second": round(len(texts) / seconds, 1)}


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)
