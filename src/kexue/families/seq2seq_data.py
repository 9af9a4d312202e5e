"""The headline family's data: the character vocabulary with start and end tokens, paragraphs and
headlines as ids, and the teacher-forced ``((paragraph, decoder input), target)`` batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kexue.batches import SequenceBatches
from kexue.text.vocab import PAD, UNK, Vocab, characters

START, END = "<s>", "</s>"
START_ID, END_ID = 2, 3
SPECIAL_IDS = (0, 1, 2, 3)  # pad, unk, start, end: never "present" in an input
BANNED_IDS = (0, 1, 2)  # never generated (pad, unk, start)


def build_vocab(texts: Sequence[str], min_count: int) -> Vocab:
    """Characters of the training paragraphs and headlines, with <s> and </s> at ids 2 and 3."""
    ranked = Vocab.build((characters(t) for t in texts), min_count=min_count).tokens[2:]
    return Vocab([PAD, UNK, START, END, *ranked])


def encode_inputs(texts: Sequence[str], vocab: Vocab, maxlen: int) -> list[np.ndarray]:
    return [vocab.encode(characters(t), maxlen) for t in texts]


def encode_targets(headlines: Sequence[str], vocab: Vocab, max_headline: int
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Decoder inputs ``<s> c1 .. cn`` and targets ``c1 .. cn </s>`` (n <= max_headline)."""
    ids = [[vocab.index.get(c, 1) for c in characters(h)][:max_headline] for h in headlines]
    inputs = [np.asarray([START_ID, *i], dtype=np.int32) for i in ids]
    targets = [np.asarray([*i, END_ID], dtype=np.int32) for i in ids]
    return inputs, targets


def decode_ids(ids: Sequence[int], vocab: Vocab) -> str:
    return "".join(vocab.tokens[i] for i in ids if i not in SPECIAL_IDS)


def pad_ids(sequences: Sequence[np.ndarray], multiple: int = 8, extra: int = 0) -> np.ndarray:
    """Right-pad with 0 to the longest length rounded up to ``multiple`` (fewer distinct shapes,
    fewer retraces), plus ``extra`` steps."""
    length = max(len(s) for s in sequences)
    length = -(-length // multiple) * multiple + extra
    out = np.zeros((len(sequences), length), dtype=np.int32)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
    return out


class PairBatches(SequenceBatches):
    """``((paragraph ids, decoder input ids), target ids)`` batches, padded per batch, in the
    sortish order of :class:`kexue.batches.SequenceBatches` by paragraph length (the decoder
    inputs and targets have their own length, so they are padded here).

    ``input_dropout`` replaces that share of the decoder's teacher-forced input characters (never
    the start token) with <unk>, drawn per ``(seed, epoch, batch)``: the decoder then has to
    look at the paragraph instead of continuing a memorised headline."""

    def __init__(self, inputs: Sequence[np.ndarray], decoder_inputs: Sequence[np.ndarray],
                 targets: Sequence[np.ndarray], batch_size: int, seed: int = 0,
                 chunk_batches: int = 50, input_dropout: float = 0.0):
        if not len(inputs) == len(decoder_inputs) == len(targets):
            raise ValueError("PairBatches: inputs, decoder inputs and targets differ in length")
        super().__init__(inputs, None, batch_size, seed, shuffle=True, chunk_batches=chunk_batches)
        self.decoder_inputs, self.targets = list(decoder_inputs), list(targets)
        self.input_dropout = input_dropout

    def __getitem__(self, index: int):
        (x,) = super().__getitem__(index)  # (batch, x_len), one extra padded step on odd batches
        idx = self._batches[index]
        extra = index % 2  # the same extra step, for the same reason (see SequenceBatches)
        y_in = pad_ids([self.decoder_inputs[i] for i in idx], 1, extra)  # (batch, y_len)
        y_out = pad_ids([self.targets[i] for i in idx], 1, extra)  # (batch, y_len), 0 = ignored
        if self.input_dropout > 0:
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            drop = rng.random(y_in.shape) < self.input_dropout  # (batch, y_len)
            drop[:, 0] = False  # the start token stays
            y_in = np.where(drop & (y_in > 0), 1, y_in)  # 1 = <unk>
        return (x, y_in), y_out
