"""A trained sentiment model as a tool: the model folder loaded with its vocabularies (and word
lexicon), P(positive) for any texts, per ensemble member if asked — for evaluation, saliency and
the ``kexue sentiment`` command."""

from __future__ import annotations

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

    def member_names(self) -> list[str]:
        """The ensemble's member sub-models (empty for a single model)."""
        return [layer.name for layer in self.model.layers if isinstance(layer, keras.Model)]

    def predict_proba(self, texts: list[str], member: str | None = None) -> np.ndarray:
        """P(positive) for each text, in input order; ``member`` asks one ensemble member."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        model = self.model if member is None else self.model.get_layer(member)
        words = (word_ids(self.word_vocab, self.segment, texts, self.maxlen)
                 if self.word_vocab is not None else None)
        batches = SequenceBatches(add_words(encode(self.vocab, texts, self.maxlen, self.bigram_vocab),
                                             words), None, self.batch_size, shuffle=False)
        out = np.concatenate([model(batches[i][0], training=False).numpy()[:, 0]
                              for i in range(len(batches))])
        probs = np.empty(len(texts), dtype=np.float32)
        probs[batches.order()] = out
        return probs
