"""Character sequence labelling shared by the ``segment`` and ``ner`` families.

The recipe of 苏剑林's "简明条件随机场CRF介绍（附带纯Keras实现）" (kexue.fm, 2018): every character
gets a score per tag from an encoder (here character + character-bigram embeddings → a stack of
convolutions or a BiLSTM), and a linear-chain CRF (:class:`kexue.layers.CRF`) scores whole tag
paths; decoding is Viterbi. ``head: softmax`` swaps the CRF for an independent per-character
softmax, the ablation that shows what the transition matrix adds.

Long lines are cut into pieces at sentence punctuation before tagging (training and inference
alike), so batches hold sentences rather than whole paragraphs.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np
from keras import ops

from kexue.batches import SequenceBatches
from kexue.checkpoint import CheckpointFolder, load_member, save_member
from kexue.io import atomic_path, read_json, write_json
from kexue.layers.crf import CRF, viterbi_decode
from kexue.layers.pooling import ZeroPadding
from kexue.text.vocab import Vocab
from kexue.train import (
    FitConfig,
    build_optimizer,
    fit,
    make_strategy,
    run_key,
    seed_everything,
    write_fit_curves,
)

_SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』）)]*")
_CLAUSE_END = re.compile(r"[，、：,:]")


@dataclass(frozen=True)
class TaggerConfig:
    maxlen: int = field(metadata={"min": 8})  # longest piece a line is cut into (characters)
    min_count: int = field(metadata={"min": 1})  # rarer characters map to <unk>
    bigrams: bool  # add the embedding of the bigram starting at each character
    bigram_min_count: int = field(metadata={"min": 1})  # rarer bigrams map to <unk>
    lexicon_min_count: int = field(metadata={"min": 0})  # training words seen this often form a lexicon feature; 0 = off
    dictionary: Literal["none", "jieba"]  # a second lexicon feature from an external word list (jieba's dict.txt)
    embedding_dim: int = field(metadata={"min": 1})  # per embedding (character, bigram)
    encoder: Literal["cnn", "bilstm"]
    layers: int = field(metadata={"min": 1})  # convolution layers, or stacked BiLSTMs
    units: int = field(metadata={"min": 1})  # filters per convolution, or LSTM units per direction
    kernel_size: int = field(metadata={"min": 1})  # convolution width (cnn)
    dropout: float = field(metadata={"min": 0.0, "max": 0.95})
    head: Literal["crf", "softmax"]  # CRF over tag paths, or independent per-character softmax
    crf_lr_multiplier: float = field(metadata={"min": 0.0})  # transitions learn this much faster (post's trick)
    members: int = field(metadata={"min": 1})  # seed ensemble: emissions and transitions averaged
    inference_dtype: Literal["float32", "bfloat16"]  # compute type of evaluation and the CLI
    fit: FitConfig


@functools.lru_cache(maxsize=65536)
def normalise_char(ch: str) -> str:
    """The lookup form of a character: NFKC (full-width digits and letters → ASCII), lower case.
    The text itself is never changed; only the vocabulary sees this form."""
    return unicodedata.normalize("NFKC", ch).lower() or ch


def pieces(text: str, maxlen: int) -> list[tuple[int, int]]:
    """Cut ``text`` into ``(start, end)`` pieces of at most ``maxlen`` characters: after
    sentence-final punctuation, then (for long sentences) after clause punctuation, then hard."""
    out: list[tuple[int, int]] = []
    start = 0
    cuts = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    for cut in cuts:
        if cut <= start:
            continue
        _cut_long(text, start, cut, maxlen, out)
        start = cut
    return out


def _cut_long(text: str, start: int, end: int, maxlen: int, out: list[tuple[int, int]]) -> None:
    while end - start > maxlen:
        window = text[start : start + maxlen]
        clause = [m.end() for m in _CLAUSE_END.finditer(window)]
        cut = start + (clause[-1] if clause and clause[-1] > maxlen // 4 else maxlen)
        out.append((start, cut))
        start = cut
    if end > start:
        out.append((start, end))


def char_bigrams(chars: Sequence[str]) -> list[str]:
    """The bigram starting at each character; the last pairs with an end marker."""
    return [a + b for a, b in zip(chars, [*chars[1:], "</s>"], strict=True)]


LEXICON_LENGTHS = (2, 3, 4, 5, 6)  # the last one stands for "this long or longer" (up to 8)
_LONGEST_LEXICON_WORD = 8


@functools.lru_cache(maxsize=65536)
def lexicon_char(ch: str) -> str:
    """One character per position for lexicon matching: the normalised form when it is a
    single character (full-width → ASCII), else the character itself."""
    norm = normalise_char(ch)
    return norm if len(norm) == 1 else ch


def lexicon_prefixes(lexicon: set[str]) -> frozenset[str]:
    """Every prefix (2 characters or more) of a lexicon word: lets the scan stop early."""
    return frozenset(w[:m] for w in lexicon for m in range(2, len(w) + 1))


def lexicon_codes(text: str, lexicon: set[str], prefixes: frozenset[str] | None = None) -> np.ndarray:
    """Per character, which lexicon words start and end at it, by length (2, 3, 4, 5, 6-8): two
    bits per length, packed into one id in 1..1024 (0 is padding). ``text`` and the lexicon
    are in :func:`lexicon_char` form.

    Why: a dictionary feature tells the network where known words could begin and end, which
    a window of character embeddings sees only indirectly; segmenters have long used it (e.g.
    Zhang, Zhang & Fu 2018, "Neural Networks Incorporating Dictionaries for Chinese Word
    Segmentation")."""
    n = len(text)
    prefixes = lexicon_prefixes(lexicon) if prefixes is None else prefixes
    sizes = range(2, _LONGEST_LEXICON_WORD + 1)
    starts = np.zeros((n + _LONGEST_LEXICON_WORD, len(sizes)), dtype=bool)  # word of size m at i
    for i in range(n - 1):
        for k, m in enumerate(sizes):
            piece = text[i : i + m]
            if len(piece) < m or piece not in prefixes:
                break  # no lexicon word starts with this piece (or the text ends)
            if piece in lexicon:
                starts[i, k] = True
    ends = np.zeros_like(starts)  # word of size m ending at j = starting at j - m + 1
    for k, m in enumerate(sizes):
        ends[m - 1 :, k] = starts[: len(starts) - m + 1, k]
    starts, ends = starts[:n], ends[:n]
    last = len(LEXICON_LENGTHS) - 1  # sizes from LEXICON_LENGTHS[-1] up share the last bit pair
    bits = np.zeros(n, dtype=np.int32)
    for k in range(len(sizes)):
        slot = min(k, last)
        bits |= starts[:, k].astype(np.int32) << (2 * slot)
        bits |= ends[:, k].astype(np.int32) << (2 * slot + 1)
    return bits + 1


LEXICON_IDS = 1 + 4 ** len(LEXICON_LENGTHS)


@dataclass
class Features:
    """Vocabularies (and the lexicon) that turn a text piece into model inputs: character ids,
    then bigram ids and lexicon codes when they are on."""

    chars: Vocab
    bigrams: Vocab | None
    lexicon: set[str] | None = None
    dictionary: set[str] | None = None
    _prefixes: frozenset[str] | None = field(default=None, repr=False)
    _dictionary_prefixes: frozenset[str] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, texts: Sequence[str], cfg: TaggerConfig,
              words: Sequence[Sequence[str]] = ()) -> Features:
        norm = [[normalise_char(c) for c in t] for t in texts]
        chars = Vocab.build(norm, min_count=cfg.min_count)
        pairs = Vocab.build((char_bigrams(n) for n in norm), min_count=cfg.bigram_min_count) \
            if cfg.bigrams else None
        lexicon = None
        if cfg.lexicon_min_count:
            counts = Counter("".join(map(lexicon_char, w)) for line in words for w in line)
            lexicon = {w for w, c in counts.items() if c >= cfg.lexicon_min_count and len(w) > 1}
        dictionary = jieba_dictionary() if cfg.dictionary == "jieba" else None
        return cls(chars, pairs, lexicon, dictionary)

    def encode(self, text: str) -> tuple[np.ndarray, ...]:
        norm = [normalise_char(c) for c in text]
        out = [self.chars.encode(norm)]
        if self.bigrams is not None:
            out.append(self.bigrams.encode(char_bigrams(norm)))
        lexical = "".join(map(lexicon_char, text))
        if self.lexicon is not None:
            if self._prefixes is None:
                self._prefixes = lexicon_prefixes(self.lexicon)
            out.append(lexicon_codes(lexical, self.lexicon, self._prefixes))
        if self.dictionary is not None:
            if self._dictionary_prefixes is None:
                self._dictionary_prefixes = lexicon_prefixes(self.dictionary)
            out.append(lexicon_codes(lexical, self.dictionary, self._dictionary_prefixes))
        return tuple(out)

    def save(self, model_dir: Path) -> None:
        self.chars.save(model_dir / "vocab.json")
        if self.bigrams is not None:
            self.bigrams.save(model_dir / "bigram_vocab.json")
        if self.lexicon is not None:
            write_json(model_dir / "lexicon.json", sorted(self.lexicon), indent=None)
        if self.dictionary is not None:
            write_json(model_dir / "dictionary.json", sorted(self.dictionary), indent=None)

    @classmethod
    def load(cls, model_dir: Path) -> Features:
        bigrams, lexicon = model_dir / "bigram_vocab.json", model_dir / "lexicon.json"
        dictionary = model_dir / "dictionary.json"
        return cls(Vocab.load(model_dir / "vocab.json"),
                   Vocab.load(bigrams) if bigrams.is_file() else None,
                   set(read_json(lexicon)) if lexicon.is_file() else None,
                   set(read_json(dictionary)) if dictionary.is_file() else None)


def jieba_dictionary() -> set[str]:
    """The words of 2 to 8 characters in jieba 0.42's own dictionary (``jieba/dict.txt``, about
    350k entries), in :func:`lexicon_char` form.

    Why: the training month has no entry for a new name or term (中非, 邱县, 石斑鱼 are test-month
    words missed by the model without it); a general word list says where such words could be,
    and the network learns how far to trust it against the PKU standard, which splits some of
    jieba's longer entries. The list ships with the model (``dictionary.json``), so inference
    does not need jieba."""
    import jieba

    path = Path(jieba.__file__).parent / "dict.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: reinstall jieba (pip install jieba==0.42.1) "
                                "or set dictionary: none")
    words = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            word = "".join(map(lexicon_char, line.split(" ", 1)[0]))
            if 2 <= len(word) <= _LONGEST_LEXICON_WORD:
                words.add(word)
    return words


def build_model(cfg: TaggerConfig, num_tags: int, vocab_size: int, bigram_vocab_size: int,
                name: str) -> keras.Model:
    """Embeddings → encoder → per-character tag scores (+ CRF). The output is the emission
    scores (CRF head) or the tag probabilities (softmax head), shape (batch, T, num_tags)."""
    recurrent = cfg.encoder == "bilstm"
    ids = keras.Input(shape=(None,), dtype="int32", name="char_ids")  # (batch, T)
    inputs = [ids]
    x = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=recurrent,
                               name="char_embedding")(ids)  # (batch, T, dim)
    if cfg.bigrams:
        pair_ids = keras.Input(shape=(None,), dtype="int32", name="bigram_ids")  # (batch, T)
        inputs.append(pair_ids)
        pairs = keras.layers.Embedding(bigram_vocab_size, cfg.embedding_dim, mask_zero=recurrent,
                                       name="bigram_embedding")(pair_ids)  # (batch, T, dim)
        x = keras.layers.Concatenate(name="char_and_bigram")([x, pairs])  # (batch, T, 2 dim)
    if cfg.lexicon_min_count:
        codes = keras.Input(shape=(None,), dtype="int32", name="lexicon_codes")  # (batch, T)
        inputs.append(codes)
        lexical = keras.layers.Embedding(LEXICON_IDS, cfg.embedding_dim, mask_zero=recurrent,
                                         name="lexicon_embedding")(codes)  # (batch, T, dim)
        x = keras.layers.Concatenate(name="with_lexicon")([x, lexical])
    if cfg.dictionary != "none":
        codes = keras.Input(shape=(None,), dtype="int32", name="dictionary_codes")  # (batch, T)
        inputs.append(codes)
        listed = keras.layers.Embedding(LEXICON_IDS, cfg.embedding_dim, mask_zero=recurrent,
                                        name="dictionary_embedding")(codes)  # (batch, T, dim)
        x = keras.layers.Concatenate(name="with_dictionary")([x, listed])
    x = keras.layers.Dropout(cfg.dropout, name="embedding_dropout")(x)
    for i in range(cfg.layers):
        if recurrent:
            x = keras.layers.Bidirectional(
                keras.layers.LSTM(cfg.units, return_sequences=True, name=f"lstm{i}"),
                name=f"bilstm{i}")(x)  # (batch, T, 2 units)
        else:
            x = ZeroPadding(name=f"zero_padding{i}")([x, ids])
            x = keras.layers.Conv1D(cfg.units, cfg.kernel_size, padding="same", activation="relu",
                                    name=f"conv{i}")(x)  # (batch, T, units)
        x = keras.layers.Dropout(cfg.dropout, name=f"dropout{i}")(x)
    scores = keras.layers.Dense(num_tags, name="tag_scores")(x)  # (batch, T, num_tags)
    if cfg.head == "crf":
        out = CRF(num_tags, lr_multiplier=cfg.crf_lr_multiplier or 1.0, name="crf")(scores)
    else:
        out = keras.layers.Softmax(name="tag_probs")(scores)
    return keras.Model(inputs if len(inputs) > 1 else ids, out, name=name)


def _compile(model: keras.Model, cfg: TaggerConfig) -> None:
    if cfg.head == "crf":
        loss = model.get_layer("crf").loss
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1)
    model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model), loss=loss)


@dataclass
class Examples:
    """Line pieces with their tag ids, ready for batching."""

    inputs: tuple[list[np.ndarray], ...]
    tags: list[np.ndarray]

    @property
    def chars(self) -> int:
        return int(sum(len(t) for t in self.tags))


def make_examples(texts: Sequence[str], tags: Sequence[Sequence[str]], tag_names: Sequence[str],
                  features: Features, maxlen: int) -> Examples:
    index = {t: i for i, t in enumerate(tag_names)}
    columns: list[list[np.ndarray]] | None = None
    tag_ids = []
    for text, line_tags in zip(texts, tags, strict=True):
        if len(text) != len(line_tags):
            raise ValueError(f"{len(text)} characters but {len(line_tags)} tags: {text[:30]!r}")
        for start, end in pieces(text, maxlen):
            encoded = features.encode(text[start:end])
            columns = columns or [[] for _ in encoded]
            for column, array in zip(columns, encoded, strict=True):
                column.append(array)
            tag_ids.append(np.array([index[t] for t in line_tags[start:end]], dtype=np.int32))
    return Examples(tuple(columns or []), tag_ids)


def decode_batch(model: keras.Model, x, lengths: np.ndarray) -> list[np.ndarray]:
    """Tag ids per sequence: Viterbi under the model's CRF, or the per-character argmax."""
    scores = ops.convert_to_numpy(model(x, training=False))  # (batch, T, num_tags)
    try:
        crf = model.get_layer("crf")
    except ValueError:
        return [scores[b, : lengths[b]].argmax(-1) for b in range(len(lengths))]
    return viterbi_decode(scores, ops.convert_to_numpy(crf.transitions), lengths)


class DecodedScore(keras.callbacks.Callback):
    """Logs ``val_<name>``: the family's own score (word F1, entity F1) of the decoded tags of
    the validation pieces, so the best epoch is picked on what is reported, not on the loss.
    ``score(gold, predicted)`` takes lists of tag-name sequences."""

    def __init__(self, batches: SequenceBatches, tag_names: Sequence[str],
                 score: Callable[[list[list[str]], list[list[str]]], float], name: str):
        super().__init__()
        self.batches, self.tag_names, self.score, self.name = batches, list(tag_names), score, name

    def on_epoch_end(self, epoch, logs=None):
        gold, predicted = [], []
        for i in range(len(self.batches)):
            x, y = self.batches[i]
            lengths = (y >= 0).sum(axis=1)
            for row, path in enumerate(decode_batch(self.model, x, lengths)):
                gold.append([self.tag_names[t] for t in y[row, : lengths[row]]])
                predicted.append([self.tag_names[t] for t in path])
        if logs is not None:
            logs[f"val_{self.name}"] = float(self.score(gold, predicted))


def average_members(members: list[keras.Model], crf: bool, name: str) -> keras.Model:
    """One model from a seed ensemble: the members' emissions (or probabilities) averaged, and
    for the CRF head a CRF whose transitions are the members' mean, so Viterbi maximises the
    members' average path score."""
    inputs = [keras.Input(shape=(None,), dtype="int32", name=t.name.split(":")[0])
              for t in members[0].inputs]  # (batch, T) each
    x = inputs if len(inputs) > 1 else inputs[0]
    outputs = [member(x) for member in members]  # each (batch, T, num_tags)
    out = keras.layers.Average(name="average")(outputs)
    if crf:
        num_tags = members[0].get_layer("crf").num_tags
        layer = CRF(num_tags, name="crf")
        out = layer(out)
        layer.set_weights([np.mean([ops.convert_to_numpy(m.get_layer("crf").transitions)
                                    for m in members], axis=0)])
    return keras.Model(x, out, name=name)


def train_tagger(cfg: TaggerConfig, family: str, tag_names: Sequence[str],
                 train_rows: tuple[list[str], list[list[str]]],
                 valid_rows: tuple[list[str], list[list[str]]],
                 model_dir: str | Path, live_dir: str | Path | None,
                 resume_root: str | Path | None, fingerprint: Sequence[Path],
                 score: Callable[[list[list[str]], list[list[str]]], float],
                 train_words: Sequence[Sequence[str]] = ()) -> dict:
    """Train on ``(texts, tags)``, keeping the epoch with the best ``score`` (an F1 of decoded
    validation tags); write ``model.keras``, the vocabularies, ``tags.json`` and
    ``train_info.json`` into ``model_dir``. ``train_words`` (the training lines' words) feed
    the lexicon feature when ``lexicon_min_count`` is on."""
    model_dir = Path(model_dir)
    resume_dir = None
    if resume_root is not None:
        resume_dir = Path(resume_root) / family / run_key(dataclasses.asdict(cfg), list(fingerprint))
    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    if cfg.lexicon_min_count and not train_words:
        raise ValueError(f"{family}.lexicon_min_count={cfg.lexicon_min_count} needs the training "
                         "words; set it to 0 for a corpus without word boundaries")
    features = Features.build(train_rows[0], cfg, train_words)
    train_ex = make_examples(*train_rows, tag_names, features, cfg.maxlen)
    valid_ex = make_examples(*valid_rows, tag_names, features, cfg.maxlen)
    multi = len(train_ex.inputs) > 1
    train_batches = SequenceBatches(train_ex.inputs if multi else train_ex.inputs[0], train_ex.tags,
                                    cfg.fit.batch_size, seed=cfg.fit.seed)
    valid_batches = SequenceBatches(valid_ex.inputs if multi else valid_ex.inputs[0], valid_ex.tags,
                                    cfg.fit.batch_size, shuffle=False)
    models, results = [], []
    for index in range(cfg.members):
        done = resume_dir / f"member{index}.keras" if resume_dir is not None else None
        finished = load_member(done, safe_mode=True, compile=False) if done is not None else None
        if finished is not None:  # finished before an interruption
            models.append(finished[0])
            results.append(finished[1])
            if live_dir is not None:
                write_fit_curves(live_dir, cfg.fit, finished[1]["history"],
                                 f"member{index}/" if cfg.members > 1 else "", index > 0)
            continue
        seed = cfg.fit.seed + index
        seed_everything(seed, cfg.fit.deterministic)
        train_batches = SequenceBatches(train_ex.inputs if multi else train_ex.inputs[0],
                                        train_ex.tags, cfg.fit.batch_size, seed=seed)
        name = f"member{index}" if cfg.members > 1 else family
        with make_strategy(cfg.fit.distribute).scope():
            model = build_model(cfg, len(tag_names), len(features.chars),
                                len(features.bigrams) if features.bigrams else 0, name=name)
            _compile(model, cfg)
        result = fit(model, train_batches, valid_batches, cfg.fit, monitor="val_f1", mode="max",
                     live_dir=live_dir,
                     resume_dir=resume_dir / name if resume_dir is not None else None,
                     live_prefix=f"{name}/" if cfg.members > 1 else "", keep_curves=index > 0,
                     keep_checkpoint=True,
                     scorers=[DecodedScore(valid_batches, tag_names, score, "f1")])
        if done is not None:
            save_member(done, model, result.to_dict())
        models.append(model)
        results.append(result.to_dict())
    if cfg.members > 1:
        # uncompiled copies: a compiled member carries the CRF's bound-method loss in its saved
        # config, which a nested model cannot be loaded with
        copies = []
        for member in models:
            copy = build_model(cfg, len(tag_names), len(features.chars),
                               len(features.bigrams) if features.bigrams else 0, name=member.name)
            copy.set_weights(member.get_weights())
            copies.append(copy)
        model = average_members(copies, cfg.head == "crf", family)
    else:
        model = models[0]
    ensemble_f1 = None
    if cfg.members > 1:
        scorer = DecodedScore(valid_batches, tag_names, score, "f1")
        scorer.set_model(model)
        logs: dict = {}
        scorer.on_epoch_end(0, logs)
        ensemble_f1 = logs["val_f1"]
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    features.save(model_dir)
    write_json(model_dir / "tags.json", list(tag_names))
    info = {"config": dataclasses.asdict(cfg), "vocab_size": len(features.chars),
            "bigram_vocab_size": len(features.bigrams) if features.bigrams else 0,
            "params": int(model.count_params()), "train_pieces": len(train_ex.tags),
            "train_chars": train_ex.chars,
            "train_seconds": round(sum(r["train_seconds"] for r in results), 2),
            "chars_per_second": round(train_ex.chars * sum(r["epochs_run"] for r in results)
                                      / max(sum(r["train_seconds"] for r in results), 1e-9), 1),
            "epochs_run": sum(r["epochs_run"] for r in results),
            "best_epoch": results[0]["best_epoch"], "best_value": results[0]["best_value"],
            "monitor": results[0]["monitor"], "history": results[0]["history"],
            "valid_f1_ensemble": ensemble_f1, "members": results}
    write_json(model_dir / "train_info.json", info)
    if resume_dir is not None:  # only now: a kill before this point resumes from the members
        CheckpointFolder(resume_dir).discard()
    return info


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
