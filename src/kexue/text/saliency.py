"""Which input words drive a text classifier's prediction: occlusion, gradient×input, and the
deletion curve (AOPC) that scores both.

After 苏剑林, "RNN模型中输入的重要性的评估" (科学空间, kexue.fm): a trained RNN classifier is a
black box over its input sequence; ask which words it leans on. Here the tokens are the words
of the review as cut by the learnt lexicon (stage `tokenize`), so every word spans whole
characters of the character-level model's input.

Two importance scores per word, both for the *predicted* class c of the full text:

- occlusion: ``P(c | text) − P(c | text without the word)``; all variants of a text go to the
  classifier in one call. Needs only ``predict_proba``.
- gradient×input: the gradient of the log-odds of c, ``log P_c − log(1 − P_c)``, w.r.t. the
  input embedding of each character, dotted with that embedding, summed over the word's
  characters. Log-odds rather than probability: within one text the two rank words identically
  (d logit/dP = 1/(P(1−P)) is one factor per text), but a confident prediction's probability
  is saturated and its gradients tiny, so log-odds scores are comparable across texts. The
  embedding is taken where the channels (character, bigram, word) have been merged — the
  input of the layer named ``embeddings_into`` — which equals the sum over the channels'
  own gradient×input because the merge is linear (Add, Concatenate). A bigram embedding sits
  at its first character. A seed ensemble (the mean of member models, as
  :func:`kexue.families.sentiment.average_members` builds it) is differentiated through each
  member's own embeddings: the scores add up over members.

Which scores are right? Delete each text's top-k words (k = 1..K) by a score and measure the
drop ``P(c | text) − P(c | text without them)``; a good score makes the drop large fast. The
mean drop over k = 1..K is the AOPC ("area over the perturbation curve", Samek et al. 2017,
"Evaluating the visualization of what a deep neural network has learned"; their sum also
counts k = 0, whose drop is 0, and divides by K + 1 — the same ranking of methods). The
baseline is a random deletion order, averaged over a few seeded orders. Texts with fewer
than k words lose all of them. Note that occlusion measures exactly the k = 1 step of its
own curve, so it starts with an advantage; gradient×input is an independent check.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kexue.io import atomic_write

PredictProba = Callable[[list[str]], np.ndarray]
Segmenter = Callable[[str], list[str]]
METHODS = ("occlusion", "gradient_x_input")
CHUNK = 8  # texts whose variants share one classifier call


@dataclass(frozen=True)
class Config:
    texts: int = field(metadata={"min": 1})  # test texts scored (a seeded sample; all if fewer)
    max_k: int = field(metadata={"min": 1})  # deletion curve: remove the top 1..max_k words
    random_orders: int = field(metadata={"min": 1})  # seeded random orders averaged as the baseline
    render: int = field(metadata={"min": 1})  # texts drawn in the HTML/PNG (the sample's first ones)
    seed: int  # seeds the sample and the random orders


def check(cfg: Config) -> None:
    """Cross-key checks that the schema cannot express."""
    from kexue.config import ConfigError

    if cfg.render > cfg.texts:
        raise ConfigError(f"params.yaml: saliency.render = {cfg.render} is not valid: expected a "
                          f"value <= saliency.texts ({cfg.texts}) (the rendered texts are the "
                          "first of the scored sample). Fix it in params.yaml.")


# --- words ------------------------------------------------------------------------------------


def text_words(text: str, segment: Segmenter) -> list[str]:
    """The words of ``text`` (whitespace dropped); they spell its non-space characters in order.
    A segmenter whose words do not spell them falls back to single characters."""
    chars = "".join(ch for ch in text if not ch.isspace())
    words = ["".join(ch for ch in w if not ch.isspace()) for w in segment(text)]
    words = [w for w in words if w]
    return words if "".join(words) == chars else list(chars)


def without(words: Sequence[str], drop: Sequence[int] | set[int]) -> str:
    """The text spelled by ``words`` minus the words at positions ``drop``."""
    drop = set(drop)
    return "".join(w for i, w in enumerate(words) if i not in drop)


def char_spans(words: Sequence[str]) -> list[tuple[int, int]]:
    """``[start, end)`` character positions of each word in the joined text."""
    ends = np.cumsum([len(w) for w in words])
    return [(int(e) - len(w), int(e)) for w, e in zip(words, ends, strict=True)]


def per_word(position_scores: np.ndarray, words: Sequence[str]) -> np.ndarray:
    """Sum per-character scores over each word's characters (positions past the end of
    ``position_scores``, i.e. beyond the model's maxlen, count 0)."""
    return np.array([float(np.sum(position_scores[start:end]))
                     for start, end in char_spans(words)], dtype=np.float64)


# --- probabilities ----------------------------------------------------------------------------


def class_probabilities(probs: np.ndarray) -> np.ndarray:
    """``(n, classes)`` from a classifier's output: one sigmoid column (or a 1-D array of
    P(positive)) becomes ``[1 − p, p]``."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1:
        probs = probs[:, None]
    return np.concatenate([1.0 - probs, probs], axis=1) if probs.shape[1] == 1 else probs


def occlusion(predict_proba: PredictProba, words_list: Sequence[Sequence[str]]
              ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per text: ``P(c | text) − P(c | text without word i)`` for every word i, with c the
    class predicted for the full text. One classifier call for all variants of all texts.
    Returns (scores per text, predicted classes, P(c | text))."""
    batch: list[str] = []
    for words in words_list:
        batch.append(without(words, ()))
        batch.extend(without(words, (i,)) for i in range(len(words)))
    probs = class_probabilities(predict_proba(batch))
    scores, classes, base = [], [], []
    row = 0
    for words in words_list:
        c = int(np.argmax(probs[row]))
        classes.append(c)
        base.append(probs[row, c])
        scores.append(probs[row, c] - probs[row + 1: row + 1 + len(words), c])
        row += 1 + len(words)
    return scores, np.array(classes), np.array(base)


# --- gradient × input -------------------------------------------------------------------------


def _log_odds(prob, classes):
    """log P_c − log(1 − P_c) per example; ``prob`` is the model output (batch, 1 | classes)."""
    import tensorflow as tf

    if prob.shape[-1] == 1:
        prob = tf.concat([1.0 - prob, prob], axis=-1)  # (batch, 2)
    p_c = tf.gather(prob, classes, axis=1, batch_dims=1)  # (batch,)
    rest = tf.reduce_sum(prob, axis=-1) - p_c  # 1 − P_c without cancellation for a softmax
    eps = 1e-12  # no clipping: a clipped value would have zero gradient
    return tf.math.log(p_c + eps) - tf.math.log(rest + eps)


class GradientXInput:
    """Per-position gradient×input of a Keras classifier at its merged input embeddings.

    The model (or each member of a mean ensemble) is split at the input of the layer
    ``embeddings_into``: a tail from the id inputs to the embeddings, and a head from the
    embeddings to the output. The head also takes the id inputs: the padding masks are computed
    from them (they carry no gradient). TensorFlow backend (``tf.GradientTape``)."""

    def __init__(self, model, embeddings_into: str = "embedding_dropout"):
        import keras

        self.model = model
        members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if members:
            last = model.layers[-1]
            if not isinstance(last, keras.layers.Average) or last.output is not model.output:
                raise ValueError(f"{model.name}: nested models are supported only as a mean "
                                 "ensemble (the output is an Average of the members)")
        parts = members or [model]
        self.parts = []
        for part in parts:
            try:
                split = part.get_layer(embeddings_into)
            except ValueError as err:
                raise ValueError(f"{part.name}: no layer named '{embeddings_into}' whose input is "
                                 "the input embeddings") from err
            tail = keras.Model(part.inputs, split.input)
            head = keras.Model([split.input, *part.inputs], part.output)
            self.parts.append((1.0 / len(parts), tail, head))
        self._fn = None
        self._checked = False

    def _scores(self, x, classes):
        """(batch, seq_len) gradient×input summed over parts and embedding dims, and the
        reassembled model output."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            embedded, prob = [], 0.0
            for weight, tail, head in self.parts:
                # a fresh tensor without the Keras mask: the head recomputes it from the ids
                e = tf.identity(tail(x, training=False))  # (batch, seq_len, dim)
                tape.watch(e)
                embedded.append(e)
                prob = prob + weight * head([e, *x], training=False)  # (batch, 1 | classes)
            target = tf.reduce_sum(_log_odds(prob, classes))  # examples are independent
        grads = tape.gradient(target, embedded)
        scores = tf.add_n([tf.reduce_sum(g * e, axis=-1) for g, e in zip(grads, embedded, strict=True)])
        return scores, prob

    def __call__(self, inputs: Sequence[np.ndarray], classes: np.ndarray) -> np.ndarray:
        """``(batch, seq_len)`` scores for padded id ``inputs`` (0 = padding) and the class
        whose log-odds is differentiated, per example."""
        import tensorflow as tf

        x = [tf.convert_to_tensor(np.asarray(a, dtype=np.int32)) for a in inputs]
        classes = tf.convert_to_tensor(np.asarray(classes, dtype=np.int32))
        if self._fn is None:  # one graph for every batch shape (eager RNN steps are slow)
            spec = [tf.TensorSpec([None, None], tf.int32) for _ in x]
            self._fn = tf.function(self._scores, input_signature=[spec, tf.TensorSpec([None], tf.int32)])
        scores, prob = self._fn(x, classes)
        if not self._checked:  # the split and the reassembled ensemble reproduce the model
            direct = self.model(x if len(x) > 1 else x[0], training=False).numpy()
            if not np.allclose(prob.numpy(), direct, atol=1e-4):
                raise RuntimeError(f"{self.model.name}: the split model disagrees with the model "
                                   f"(max diff {np.max(np.abs(prob.numpy() - direct)):.2e})")
            self._checked = True
        mask = (np.asarray(inputs[0]) != 0).astype(np.float32)  # (batch, seq_len)
        return scores.numpy() * mask


def gradient_x_input(gradients: GradientXInput, encode: Callable[[list[str]], list[np.ndarray]],
                     words_list: Sequence[Sequence[str]], classes: np.ndarray) -> list[np.ndarray]:
    """Per text, the gradient×input of each word (the sum over its characters); ``encode``
    turns texts into padded model inputs whose position i is the text's i-th character."""
    texts = [without(words, ()) for words in words_list]
    scores = gradients(encode(texts), classes)  # (texts, seq_len)
    return [per_word(row, words) for row, words in zip(scores, words_list, strict=True)]


# --- deletion curve ---------------------------------------------------------------------------


def ranking(scores: np.ndarray) -> np.ndarray:
    """Word indices from most to least important (ties keep text order)."""
    return np.argsort(-np.asarray(scores), kind="stable")


def random_orders(n_words: int, count: int, seed: Sequence[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(list(seed))
    return [rng.permutation(n_words) for _ in range(count)]


def deletion_drops(predict_proba: PredictProba, words_list: Sequence[Sequence[str]],
                   orders: Sequence[Sequence[np.ndarray]], classes: np.ndarray,
                   base: np.ndarray, max_k: int) -> np.ndarray:
    """``(texts, orders, max_k)``: ``P(c | text) − P(c | text without its first k words in the
    order)``, k = 1..max_k (all words once k exceeds them). One classifier call."""
    batch = [without(words, order[:k])
             for words, text_orders in zip(words_list, orders, strict=True)
             for order in text_orders for k in range(1, max_k + 1)]
    probs = class_probabilities(predict_proba(batch))
    n_orders = len(orders[0])
    picked = probs.reshape(len(words_list), n_orders, max_k, -1)
    p_c = np.take_along_axis(picked, np.asarray(classes)[:, None, None, None], axis=-1)[..., 0]
    return np.asarray(base)[:, None, None] - p_c


def aopc(drops: np.ndarray) -> float:
    """Mean drop over k = 1..K (last axis) and over everything else."""
    return float(np.mean(drops))


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class Explained:
    """Scores and deletion drops of a set of texts."""

    words: list[list[str]]
    classes: np.ndarray  # predicted class per text
    base: np.ndarray  # P(predicted class | text)
    scores: dict[str, list[np.ndarray]]  # method -> per text, one score per word
    drops: dict[str, np.ndarray]  # method | "random" -> (texts, max_k)
    seconds: dict[str, float]


def explain(predict_proba: PredictProba, gradients: GradientXInput | None,
            encode: Callable[[list[str]], list[np.ndarray]] | None,
            words_list: Sequence[list[str]], text_ids: Sequence[int], cfg: Config,
            progress: bool = True) -> Explained:
    """Occlusion, gradient×input (when ``gradients`` is given) and the deletion curves of each
    method and of ``cfg.random_orders`` random orders (seeded by ``cfg.seed`` and the text's
    id in ``text_ids``), ``CHUNK`` texts per classifier call."""
    from tqdm import tqdm

    methods = [m for m in METHODS if m != "gradient_x_input" or gradients is not None]
    scores: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    drops: dict[str, list[np.ndarray]] = {m: [] for m in [*methods, "random"]}
    classes, base = [], []
    seconds = dict.fromkeys([*methods, "deletion"], 0.0)
    starts = range(0, len(words_list), CHUNK)
    for start in tqdm(starts, desc="saliency", unit="chunk", disable=not progress, file=sys.stderr):
        chunk = list(words_list[start: start + CHUNK])
        ids = text_ids[start: start + CHUNK]
        t0 = time.perf_counter()
        occ, cls, p = occlusion(predict_proba, chunk)
        seconds["occlusion"] += time.perf_counter() - t0
        scores["occlusion"].extend(occ)
        classes.extend(cls)
        base.extend(p)
        if gradients is not None:
            t0 = time.perf_counter()
            scores["gradient_x_input"].extend(gradient_x_input(gradients, encode, chunk, cls))
            seconds["gradient_x_input"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        orders = [[ranking(scores[m][start + i]) for m in methods]
                  + random_orders(len(words), cfg.random_orders, (cfg.seed, text_id))
                  for i, (words, text_id) in enumerate(zip(chunk, ids, strict=True))]
        d = deletion_drops(predict_proba, chunk, orders, cls, p, cfg.max_k)  # (chunk, orders, K)
        seconds["deletion"] += time.perf_counter() - t0
        for j, m in enumerate(methods):
            drops[m].append(d[:, j])
        drops["random"].append(d[:, len(methods):].mean(axis=1))
    return Explained(words=[list(w) for w in words_list], classes=np.array(classes),
                     base=np.array(base), scores=scores,
                     drops={m: np.concatenate(v) for m, v in drops.items()},
                     seconds={k: round(v, 2) for k, v in seconds.items()})


def summarize(explained: Explained) -> dict:
    """AOPC per method, the mean deletion curves, and how often the methods agree."""
    out: dict = {f"aopc_{m}": round(aopc(d), 4) for m, d in explained.drops.items()}
    out["texts"] = len(explained.words)
    out["words_per_text"] = round(float(np.mean([len(w) for w in explained.words])), 2)
    out["mean_base_probability"] = round(float(np.mean(explained.base)), 4)
    if all(m in explained.scores for m in METHODS):
        same = [ranking(a)[0] == ranking(b)[0] for a, b in
                zip(explained.scores["occlusion"], explained.scores["gradient_x_input"], strict=True)]
        out["top_word_agreement"] = round(float(np.mean(same)), 4)
    k = next(iter(explained.drops.values())).shape[1]
    out["curves"] = {"k": list(range(1, k + 1)),
                     **{m: [round(float(v), 4) for v in d.mean(axis=0)]
                        for m, d in explained.drops.items()}}
    return out


def curve_rows(summary: dict) -> list[dict]:
    """The mean deletion curves as rows ``{"k", <method>: drop, ...}`` for a DVC plot."""
    curves = summary["curves"]
    methods = [m for m in curves if m != "k"]
    return [{"k": k, **{m: curves[m][i] for m in methods}} for i, k in enumerate(curves["k"])]


# --- rendering --------------------------------------------------------------------------------


def _rgba(score: float, scale: float, alpha_max: float = 0.85) -> tuple[float, float, float, float]:
    """Red for words that support the predicted class, blue for words against it."""
    a = 0.0 if scale <= 0 else min(abs(score) / scale, 1.0) * alpha_max
    return (0.86, 0.20, 0.12, a) if score > 0 else (0.15, 0.35, 0.85, a)


def render_html(path: str | Path, items: Sequence[dict], title: str, note: str = "") -> None:
    """``items``: ``{"id", "label", "predicted", "probability", "words", "scores": {method: per
    word}}``; each method's scores are scaled by the text's largest |score|."""
    parts = [
        "<!DOCTYPE html>", '<html lang="zh"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.9}"
        ".w{padding:0 1px;border-radius:2px}.m{color:#666;font-size:80%;display:inline-block;"
        "width:9em}.r{margin:0.1em 0}h3{margin:1.2em 0 0.2em;font-size:95%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        '<p>Colour: <span class="w" style="background:rgba(219,51,31,0.6)">supports the '
        'predicted class</span> · <span class="w" style="background:rgba(38,89,217,0.6)">'
        "against it</span>; intensity = |score| / the text's largest |score|, per method.</p>",
    ]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    for item in items:
        parts.append(f"<h3>{html.escape(str(item['id']))} — label {html.escape(item['label'])}, "
                     f"predicted {html.escape(item['predicted'])} "
                     f"(P = {item['probability']:.3f})</h3>")
        for method, scores in item["scores"].items():
            scale = float(np.max(np.abs(scores))) if len(scores) else 0.0
            spans = []
            for word, score in zip(item["words"], scores, strict=True):
                r, g, b, a = _rgba(float(score), scale)
                spans.append(f'<span class="w" title="{score:+.4f}" style="background:rgba('
                             f'{int(r * 255)},{int(g * 255)},{int(b * 255)},{a:.2f})">'
                             f"{html.escape(word)}</span>")
            parts.append(f'<div class="r"><span class="m">{html.escape(method)}</span>'
                         f"{''.join(spans)}</div>")
    parts.append("</body></html>")
    with atomic_write(path) as handle:
        handle.write("\n".join(parts) + "\n")


def render_png(path: str | Path, items: Sequence[dict], method: str, title: str,
               font: str | Path, per_line: int = 40, max_lines: int = 3) -> None:
    """The texts of ``items`` drawn one character per cell, each cell coloured by its word's
    ``method`` score (scaled per text); longer texts are cut after ``max_lines`` lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import Rectangle

    prop = FontProperties(fname=str(font), size=10)
    small = FontProperties(fname=str(font), size=8)
    rows = []  # (kind, payload)
    for item in items:
        rows.append(("head", f"{item['id']}  label {item['label']}  predicted {item['predicted']}"
                             f"  P = {item['probability']:.3f}"))
        scores = np.asarray(item["scores"][method], dtype=np.float64)
        scale = float(np.max(np.abs(scores))) if len(scores) else 0.0
        cells = [(ch, _rgba(float(s), scale), i == 0, i == len(w) - 1)  # char, colour, word edges
                 for w, s in zip(item["words"], scores, strict=True) for i, ch in enumerate(w)]
        lines = [cells[i: i + per_line] for i in range(0, len(cells), per_line)][:max_lines]
        if len(cells) > per_line * max_lines:
            lines[-1] = lines[-1][:-1] + [("…", (1, 1, 1, 0), True, True)]
        rows.extend(("line", line) for line in lines)
    cell, line_h = 0.25, 0.3  # inches
    fig = plt.figure(figsize=(per_line * cell + 0.4, len(rows) * line_h + 0.6))
    height = len(rows) * line_h + 0.6
    fig.text(0.2 / fig.get_figwidth(), 1 - 0.3 / height, title, fontproperties=small,
             va="center")
    ax = fig.add_axes((0.2 / fig.get_figwidth(), 0, 1 - 0.4 / fig.get_figwidth(),
                       (height - 0.6) / height))
    ax.set_xlim(0, per_line)
    ax.set_ylim(len(rows), 0)
    ax.axis("off")
    for y, (kind, payload) in enumerate(rows):
        if kind == "head":
            ax.text(0, y + 0.75, payload, fontproperties=small, color="0.35")
            continue
        for x, (ch, rgba, first, last) in enumerate(payload):
            gap = 0.06  # between words
            left, right = x + gap * first, x + 1 - gap * last
            ax.add_patch(Rectangle((left, y + 0.08), right - left, 0.84, facecolor=rgba, lw=0))
            ax.text(x + 0.5, y + 0.52, ch, fontproperties=prop, ha="center", va="center")
    with atomic_write(path, mode="wb") as handle:
        fig.savefig(handle, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
