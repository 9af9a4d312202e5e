"""Headline generation: character seq2seq with attention, a copy prior and beam search.

苏剑林, "玩转Keras之seq2seq自动生成标题" (kexue.fm/archives/5861, 2018): characters in, characters
out; a bidirectional LSTM encoder over the article, an LSTM decoder whose layer normalisations
are conditioned on the encoder's max-pooled summary, multi-head attention from the decoder to the
encoder, and a "先验分布" (prior) over output characters: the output logits are averaged with
``exp(log_scale) · presence + shift``, where ``presence`` is the 0/1 bag of the input's
characters, because most of a headline's characters appear in its article. Decoding is beam
search. The post trains on a large news corpus; here there are only ~2.1k pairs, so the
model is small and the copy prior does much of the work.

Task: the first body paragraph of a People's Daily article (stage ``prepare_articles``) →
its headline, characters. Trailing notes such as "（附图片１张）" are cut from the headlines
(``strip_headline_notes``; no method could infer them from the text), for the model and the
peers alike. Metrics: character ROUGE-1/2/L F1 (the ``rouge-score`` package with a character
tokenizer; its default tokenizer drops every non-ASCII character) and corpus BLEU (sacreBLEU,
character tokens). Peers (``baselines@seq2seq``): the first N characters of the paragraph (N =
the median training headline length) and the paragraph's clause with the highest TF-IDF score.

Beam search (:func:`beam_search`) is a plain function over a step function ``step(tokens,
state, context) → (log_probs, state)``; the model's step function runs a one-step Keras decoder
(:func:`inference_models`) that shares the training model's layers.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from kexue.batches import SequenceBatches
from kexue.config import ConfigError
from kexue.corpora.prepared_articles import headline_pairs, load_articles
from kexue.decoding import StepFn, beam_search, greedy_decode
from kexue.families.seq2seq_data import (
    BANNED_IDS,
    END_ID,
    SPECIAL_IDS,
    START_ID,
    PairBatches,
    build_vocab,
    decode_ids,
    encode_inputs,
    encode_targets,
    pad_ids,
)
from kexue.families.seq2seq_extract import (
    ValidExtractRouge,
    build_extractor,
    choose_decoding,
    compress,
    keep_labels,
    keep_log_probs,
    masked_keep_loss,
)
from kexue.infer import compiled_call
from kexue.io import atomic_path, read_json, require_files, write_json
from kexue.layers.pooling import MaskedGlobalMaxPooling1D
from kexue.layers.seq2seq import (
    ConditionalLayerNormalization,
    CopyPrior,
    KeyPaddingMask,
    TokenPresence,
)
from kexue.text.rouge import headline_metrics, rouge_l_items, rouge_scores
from kexue.text.vocab import Vocab, characters
from kexue.train import FitConfig, build_optimizer, fit, make_strategy, run_key, seed_everything


@dataclass(frozen=True)
class Config:
    maxlen: int = field(metadata={"min": 1})  # paragraph characters read (head of the first body line)
    max_headline: int = field(metadata={"min": 1})  # training headlines cut to this; decoding stops here
    strip_headline_notes: bool  # cut trailing parentheticals ("（附图片１张）") from headlines
    min_count: int = field(metadata={"min": 1})  # rarer characters map to <unk>
    embedding_dim: int = field(metadata={"min": 1})  # shared by encoder and decoder
    units: int = field(metadata={"min": 2})  # decoder LSTM units = encoder output (units/2 per direction)
    encoder_layers: int = field(metadata={"min": 1, "max": 4})  # stacked BiLSTMs
    decoder_layers: int = field(metadata={"min": 1, "max": 4})  # stacked LSTMs
    condition_units: int = field(metadata={"min": 1})  # hidden units of the conditional LN's MLPs
    attention_heads: int = field(metadata={"min": 1})
    attention_key_dim: int = field(metadata={"min": 1})
    hidden: int = field(metadata={"min": 1})  # dense layer before the output logits
    copy_prior: bool  # average the logits with the prior over the input's characters (the post)
    dropout: float = field(metadata={"min": 0.0, "max": 0.95})  # on the embeddings (training only)
    decoder_input_dropout: float = field(metadata={"min": 0.0, "max": 0.95})  # teacher-forced characters → <unk>
    beam_size: int = field(metadata={"min": 1})  # 1 = greedy decoding
    min_len: int = field(metadata={"min": 0})  # the end token is banned before this many characters
    length_penalty: float = field(metadata={"min": 0.0})  # finished score / length^α; 0 = raw log-prob
    copy_only: bool  # decoding: only the paragraph's characters (and the end) may be generated
    extract_layers: int = field(metadata={"min": 0, "max": 4})  # BiLSTMs of the keep/drop tagger; 0 = none
    extract_units: int = field(metadata={"min": 2})  # the tagger's BiLSTM units (units/2 per direction)
    extract_epochs: int = field(metadata={"min": 1})  # the tagger's epochs (best valid ROUGE-L kept)
    extract_chars: list[int] = field(metadata={"min": 1})  # extractive headline lengths tried on valid
    fit: FitConfig

    def __post_init__(self):
        if self.units % 2:
            raise ConfigError(f"params.yaml: seq2seq.units = {self.units} is not valid: expected an "
                              "even number (the BiLSTM encoder gives units/2 to each direction)")
        if self.extract_units % 2:
            raise ConfigError(f"params.yaml: seq2seq.extract_units = {self.extract_units} is not "
                              "valid: expected an even number (units/2 per BiLSTM direction)")
        if self.extract_layers and not self.extract_chars:
            raise ConfigError("params.yaml: seq2seq.extract_chars is empty: list the extractive "
                              "headline lengths to try on valid (e.g. [12, 16, 20]), or set "
                              "seq2seq.extract_layers: 0")
        if self.min_len > self.max_headline:
            raise ConfigError(f"params.yaml: seq2seq.min_len = {self.min_len} is not valid: expected "
                              f"a value <= seq2seq.max_headline ({self.max_headline})")


# --- model --------------------------------------------------------------------------------


def build_model(cfg: Config, vocab_size: int) -> keras.Model:
    """The training model: [paragraph ids (batch, x_len), decoder input ids (batch, y_len)] →
    next-character logits (batch, y_len, vocab)."""
    x_ids = keras.Input(shape=(None,), dtype="int32", name="x_ids")  # (batch, x_len)
    y_ids = keras.Input(shape=(None,), dtype="int32", name="y_ids")  # (batch, y_len)
    embedding = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=True, name="embedding")
    dropout = keras.layers.SpatialDropout1D(cfg.dropout, name="embedding_dropout")
    x = dropout(embedding(x_ids))  # (batch, x_len, emb)
    for i in range(cfg.encoder_layers):
        x = keras.layers.LayerNormalization(name=f"encoder_norm_{i}")(x)
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(cfg.units // 2, return_sequences=True), name=f"encoder_bilstm_{i}")(x)
    # x: (batch, x_len, units)
    summary = MaskedGlobalMaxPooling1D(name="encoder_max")(x)  # (batch, units)
    presence = TokenPresence(vocab_size, SPECIAL_IDS, name="presence")(x_ids)  # (batch, vocab)
    y = dropout(embedding(y_ids))  # (batch, y_len, emb)
    logits = _decoder(cfg, vocab_size, y, x, x_ids, summary, presence, states=None)[0]
    return keras.Model([x_ids, y_ids], logits, name="seq2seq")


def _decoder(cfg: Config, vocab_size: int, y, encoded, x_ids, summary, presence, states,
             layers: dict | None = None):
    """The decoder on embedded targets ``y`` (batch, steps, emb); ``states`` None (training:
    zero initial states) or [h, c] per layer. ``layers`` reuses the training model's layers."""

    def layer(name, make):
        return layers[name] if layers is not None else make(name)

    new_states = []
    for i in range(cfg.decoder_layers):
        y = layer(f"decoder_norm_{i}", lambda n: ConditionalLayerNormalization(cfg.condition_units, name=n))(
            [y, summary])
        lstm = layer(f"decoder_lstm_{i}", lambda n: keras.layers.LSTM(
            cfg.units, return_sequences=True, return_state=True, name=n))
        initial = None if states is None else states[2 * i : 2 * i + 2]
        y, h, c = lstm(y, initial_state=initial)  # (batch, steps, units), (batch, units) x 2
        new_states += [h, c]
    y = layer("decoder_norm_out", lambda n: ConditionalLayerNormalization(cfg.condition_units, name=n))(
        [y, summary])  # (batch, steps, units)
    mask = layer("attention_mask", lambda n: KeyPaddingMask(name=n))([y, x_ids])  # (batch, steps, x_len)
    attended = layer("attention", lambda n: keras.layers.MultiHeadAttention(
        cfg.attention_heads, cfg.attention_key_dim, name=n))(
        y, encoded, encoded, attention_mask=mask)  # (batch, steps, units)
    h = layer("concat", lambda n: keras.layers.Concatenate(name=n))([y, attended])
    h = layer("hidden", lambda n: keras.layers.Dense(cfg.hidden, name=n))(h)
    h = layer("hidden_act", lambda n: keras.layers.LeakyReLU(0.2, name=n))(h)
    logits = layer("logits", lambda n: keras.layers.Dense(vocab_size, name=n))(h)  # (batch, steps, vocab)
    if cfg.copy_prior:
        logits = layer("copy_prior", lambda n: CopyPrior(name=n))([logits, presence])
    return logits, new_states


def inference_models(model: keras.Model, cfg: Config) -> tuple[keras.Model, keras.Model]:
    """(encoder, one-step decoder) sharing ``model``'s layers and weights.

    encoder: paragraph ids (n, x_len) → [encoded (n, x_len, units), summary (n, units),
    presence (n, vocab)]; step: [token (n, 1), h/c per decoder layer (n, units), encoded,
    paragraph ids, summary, presence] → [logits (n, 1, vocab), new h/c per layer]."""
    layers = {layer.name: layer for layer in model.layers}
    vocab_size = layers["embedding"].input_dim
    x_ids = keras.Input(shape=(None,), dtype="int32", name="x_ids")  # (n, x_len)
    x = layers["embedding"](x_ids)
    for i in range(cfg.encoder_layers):
        x = layers[f"encoder_bilstm_{i}"](layers[f"encoder_norm_{i}"](x))
    summary = layers["encoder_max"](x)
    # without the copy prior the training graph has no presence layer; the step model ignores it
    presence = (layers["presence"] if "presence" in layers
                else TokenPresence(vocab_size, SPECIAL_IDS, name="presence"))(x_ids)
    encoder = keras.Model(x_ids, [x, summary, presence], name="seq2seq_encoder")

    token = keras.Input(shape=(1,), dtype="int32", name="token")  # (n, 1)
    states = [keras.Input(shape=(cfg.units,), name=f"{kind}_{i}")
              for i in range(cfg.decoder_layers) for kind in ("h", "c")]
    encoded = keras.Input(shape=(None, cfg.units), name="encoded")  # (n, x_len, units)
    key_ids = keras.Input(shape=(None,), dtype="int32", name="key_ids")  # (n, x_len)
    cond = keras.Input(shape=(cfg.units,), name="summary")  # (n, units)
    present = keras.Input(shape=(vocab_size,), name="presence_in")  # (n, vocab)
    logits, new_states = _decoder(cfg, vocab_size, layers["embedding"](token), encoded, key_ids,
                                  cond, present, states, layers=layers)
    step = keras.Model([token, *states, encoded, key_ids, cond, present], [logits, *new_states],
                       name="seq2seq_step")
    return encoder, step


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def model_step(step_model: keras.Model, layers: int, copy_only: bool = False) -> StepFn:
    """The step function :func:`beam_search` calls: state = [h, c] per decoder layer, context =
    [encoded, paragraph ids, summary, presence]; pad, <unk> and <s> are never generated.

    ``copy_only``: the distribution is renormalised over the characters present in the
    paragraph and the end token (an extractive constraint: on 2,000 training pairs the decoder
    otherwise recalls training headlines that have nothing to do with the paragraph)."""
    call = compiled_call(step_model)

    def step(tokens, state, context):
        outputs = call([tokens.reshape(-1, 1).astype(np.int32), *state, *context])
        logits = np.array(outputs[0][:, 0], dtype=np.float64)  # (n, vocab)
        logits[:, list(BANNED_IDS)] = -np.inf
        if copy_only:
            allowed = np.asarray(context[3]) > 0  # (n, vocab): presence of each character
            allowed[:, END_ID] = True
            logits[~allowed] = -np.inf
        return _log_softmax(logits), outputs[1 : 1 + 2 * layers]

    return step


class Decoder:
    """Beam search (or greedy decoding) with a model's inference pair (:func:`inference_models`)."""

    def __init__(self, model: keras.Model, cfg: Config):
        self.cfg = cfg
        encoder, step_model = inference_models(model, cfg)
        self.encode = compiled_call(encoder)
        self.step = model_step(step_model, cfg.decoder_layers, cfg.copy_only)

    def generate(self, inputs: Sequence[np.ndarray], beam_size: int | None = None,
                 batch_size: int = 64) -> list[tuple[list[int], float]]:
        """Decoded headline ids and log-probabilities for encoded paragraphs, in input order."""
        cfg = self.cfg
        beam_size = cfg.beam_size if beam_size is None else beam_size
        out: list[tuple[list[int], float]] = []
        for start in range(0, len(inputs), batch_size):
            x = pad_ids(inputs[start : start + batch_size])  # (n, x_len)
            encoded, summary, presence = self.encode(x)  # (n, x_len, units), (n, units), (n, vocab)
            n = len(x)
            state = [np.zeros((n, cfg.units), np.float32) for _ in range(2 * cfg.decoder_layers)]
            context = [encoded, x, summary, presence]
            kwargs = dict(batch=n, start_id=START_ID, end_id=END_ID, max_len=cfg.max_headline,
                          min_len=cfg.min_len)
            if beam_size == 1:
                out.extend(greedy_decode(self.step, state, context, **kwargs))
            else:
                out.extend(beam_search(self.step, state, context, beam_size=beam_size,
                                       length_penalty=cfg.length_penalty, **kwargs))
        return out


class ValidRouge(keras.callbacks.Callback):
    """Logs ``val_rouge1/2/L``: headlines decoded (beam search) for the validation paragraphs,
    so the best epoch is picked on the reported metric."""

    def __init__(self, cfg: Config, vocab: Vocab, inputs: Sequence[np.ndarray], references: list[str]):
        super().__init__()
        self.cfg, self.vocab, self.inputs, self.references = cfg, vocab, inputs, references
        self.decoder = None

    def on_epoch_end(self, epoch, logs=None):
        if self.decoder is None:
            self.decoder = Decoder(self.model, self.cfg)
        decoded = self.decoder.generate(self.inputs)
        hypotheses = [decode_ids(ids, self.vocab) for ids, _ in decoded]
        scores = rouge_scores(self.references, hypotheses)
        if logs is not None:
            for name, value in scores.items():
                logs[f"val_{name}"] = value


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, family: str = "seq2seq") -> dict:
    """Train on the training articles' (paragraph, headline) pairs (teacher forcing, masked
    cross-entropy), keeping the epoch with the best validation ROUGE-L of beam-searched
    headlines; then (``extract_layers`` > 0) the keep/drop tagger of
    :mod:`kexue.families.seq2seq_extract`, and the headline decoding valid prefers. Writes
    ``model.keras``, ``extractor.keras``, ``vocab.json`` and ``train_info.json`` into ``model_dir``."""
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    resume_dir = None
    if resume_root is not None:
        key = run_key(dataclasses.asdict(cfg), [data_dir / "train.jsonl", data_dir / "valid.jsonl"])
        resume_dir = Path(resume_root) / family / key
    texts, headlines = headline_pairs(load_articles(data_dir, "train"), cfg.strip_headline_notes)
    valid_texts, valid_headlines = headline_pairs(load_articles(data_dir, "valid"), cfg.strip_headline_notes)
    vocab = build_vocab(texts + headlines, cfg.min_count)
    inputs, valid_inputs = encode_inputs(texts, vocab, cfg.maxlen), encode_inputs(valid_texts, vocab, cfg.maxlen)

    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    y_in, y_out = encode_targets(headlines, vocab, cfg.max_headline)
    batches = PairBatches(inputs, y_in, y_out, cfg.fit.batch_size,
                          seed=cfg.fit.seed, input_dropout=cfg.decoder_input_dropout)
    with make_strategy(cfg.fit.distribute).scope():
        model = build_model(cfg, len(vocab))
        model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
    scorer = ValidRouge(cfg, vocab, valid_inputs, valid_headlines)
    cpu_start = time.process_time()  # the machine is shared: CPU seconds beside wall seconds
    result = fit(model, batches, None, cfg.fit, monitor="val_rougeL", mode="max",
                 live_dir=live_dir, resume_dir=resume_dir, scorers=[scorer])
    extractor, extract_result, decoding = None, None, {"chosen": "abstractive", "chars": None}
    if cfg.extract_layers:
        extractor, extract_result = _train_extractor(cfg, vocab, inputs, texts, headlines, valid_inputs,
                                                     valid_texts, valid_headlines, live_dir,
                                                     None if resume_dir is None else resume_dir / "extract")
        abstractive = [decode_ids(ids, vocab) for ids, _ in Decoder(model, cfg).generate(valid_inputs)]
        decoding = choose_decoding(valid_headlines, abstractive, valid_texts,
                                   keep_log_probs(extractor, valid_inputs), cfg.extract_chars)
    cpu_seconds = time.process_time() - cpu_start
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)

    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    if extractor is not None:
        with atomic_path(model_dir / "extractor.keras") as tmp:
            extractor.save(tmp)
    vocab.save(model_dir / "vocab.json")
    lengths = sorted(len(h) for h in headlines)
    info = {"config": dataclasses.asdict(cfg), "vocab_size": len(vocab),
            "params": int(model.count_params()), "train_examples": len(texts),
            "median_headline_chars": int(np.median(lengths)),
            "train_cpu_seconds": round(cpu_seconds, 1), **result.to_dict(), "decoding": decoding}
    if extract_result is not None:
        info["train_seconds"] = round(result.train_seconds + extract_result.train_seconds, 2)
        info["abstractive_train_seconds"] = result.train_seconds
        info["extractor"] = {"params": int(extractor.count_params()), **extract_result.to_dict()}
    write_json(model_dir / "train_info.json", info)
    return info


def _train_extractor(cfg: Config, vocab: Vocab, inputs, texts, headlines, valid_inputs, valid_texts,
                     valid_headlines, live_dir, resume_dir):
    """The keep/drop tagger on the LCS labels of the training pairs, its best epoch by the valid
    ROUGE-L of its extractive headlines."""
    labels = [keep_labels(characters(t)[: len(ids)], characters(h))
              for t, h, ids in zip(texts, headlines, inputs, strict=True)]
    batches = SequenceBatches(inputs, labels, cfg.fit.batch_size, seed=cfg.fit.seed)
    fit_cfg = dataclasses.replace(cfg.fit, epochs=cfg.extract_epochs)
    with make_strategy(cfg.fit.distribute).scope():
        extractor = build_extractor(len(vocab), cfg.embedding_dim, cfg.extract_units, cfg.extract_layers,
                                    cfg.dropout)
        extractor.compile(optimizer=build_optimizer(cfg.fit.optimizer, extractor), loss=masked_keep_loss)
    scorer = ValidExtractRouge(valid_inputs, valid_texts, valid_headlines, cfg.extract_chars)
    result = fit(extractor, batches, None, fit_cfg, monitor="val_rougeL", mode="max", live_dir=live_dir,
                 resume_dir=resume_dir, live_prefix="extract/", keep_curves=True, scorers=[scorer])
    return extractor, result


def config_from_dict(data: dict) -> Config:
    from kexue.config import parse

    return parse(Config, data, "seq2seq", source="train_info.json")


class Headliner:
    """A trained headline model: ``titles(texts)`` → (headline, score) per text, by the decoding
    valid chose at training (``info["decoding"]``): the beam search's headline and its
    log-probability, or the extractive headline and its mean log keep probability."""

    def __init__(self, model_dir: str | Path):
        model_dir = require_files(model_dir, ("model.keras", "vocab.json", "train_info.json"),
                                  "train@seq2seq")
        self.model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
        self.vocab = Vocab.load(model_dir / "vocab.json")
        self.info = read_json(model_dir / "train_info.json")
        self.cfg = config_from_dict(self.info["config"])
        self.decoder = Decoder(self.model, self.cfg)
        self.decoding = self.info.get("decoding", {"chosen": "abstractive", "chars": None})
        self.extractor = None
        if self.decoding["chosen"] == "extractive":
            model_dir = require_files(model_dir, ("extractor.keras",), "train@seq2seq")
            self.extractor = keras.saving.load_model(model_dir / "extractor.keras", safe_mode=True,
                                                     compile=False)

    def titles(self, texts: Sequence[str], beam_size: int | None = None) -> list[tuple[str, float]]:
        """Headlines by the chosen decoding; a ``beam_size`` asks for the beam search of that width."""
        if beam_size is not None and beam_size < 1:
            raise ValueError(f"beam size must be >= 1, got {beam_size}")
        if beam_size is None and self.extractor is not None:
            return self.extractive(texts, self.decoding["chars"])
        return self.abstractive(texts, beam_size)

    def abstractive(self, texts: Sequence[str], beam_size: int | None = None) -> list[tuple[str, float]]:
        """Beam-searched headlines (``beam_size`` None: the model's ``beam_size``)."""
        inputs = encode_inputs(texts, self.vocab, self.cfg.maxlen)
        decoded = self.decoder.generate(inputs, beam_size)
        return [(decode_ids(ids, self.vocab), score) for ids, score in decoded]

    def extractive(self, texts: Sequence[str], chars: int) -> list[tuple[str, float]]:
        """The ``chars`` characters of each paragraph the keep/drop tagger ranks highest, in order."""
        if self.extractor is None:
            raise ValueError("this headline model has no extractor (seq2seq.extract_layers: 0)")
        inputs = encode_inputs(texts, self.vocab, self.cfg.maxlen)
        return [compress(t, lk, chars) for t, lk in
                zip(texts, keep_log_probs(self.extractor, inputs), strict=True)]


def _length_bucket(n: int) -> str:
    return "0-5" if n <= 5 else "6-10" if n <= 10 else "11-15" if n <= 15 else "16-20" if n <= 20 else ">20"


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """ROUGE-1/2/L and BLEU of the headlines on test and valid, by the decoding valid chose at
    training (and, when that is the extractive one, the beam search's figures beside them as
    ``abstractive``); the rows are the test headlines' length bucket, real (actual) against
    generated (predicted)."""
    model = Headliner(model_dir)
    # per article, for the bootstrap: against the strongest peer, and against each peer
    metrics: dict = {"items": {"metric": "rougeL", "kind": "mean", "every_peer": {"rougeL": [0]}}}
    rows: list[dict] = []
    seconds = 0.0
    for split in ("test", "valid"):
        texts, references = headline_pairs(load_articles(data_dir, split), model.cfg.strip_headline_notes)
        start = time.perf_counter()
        hypotheses = [title for title, _ in model.titles(texts)]
        if split == "test":
            seconds = time.perf_counter() - start
            rows = [{"actual": _length_bucket(len(r)), "predicted": _length_bucket(len(h))}
                    for r, h in zip(references, hypotheses, strict=True)]
        metrics[split] = headline_metrics(references, hypotheses)
        metrics["items"][split] = rouge_l_items(references, hypotheses)
        if model.extractor is not None:  # the network's own decoder, for the record
            abstractive = [title for title, _ in model.abstractive(texts)]
            metrics.setdefault("abstractive", {})[split] = headline_metrics(references, abstractive)
    info = model.info
    params = info["params"] + (info["extractor"]["params"] if model.extractor is not None else 0)
    metrics["cost"] = {
        "train_seconds": info["train_seconds"], "train_cpu_seconds": info["train_cpu_seconds"],
        "params": params, "examples_per_second": info["examples_per_second"],
        "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
        "inference_articles_per_second": round(metrics["test"]["articles"] / max(seconds, 1e-9), 1),
    }
    metrics["decoding"] = model.decoding
    metrics["beam_size"] = model.cfg.beam_size
    metrics["train_examples"] = info["train_examples"]
    return metrics, rows
