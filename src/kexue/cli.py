"""`kexue <task> ...`: run the trained models of the pipeline on new text.

Input is the positional texts, or the lines of ``--file``, or standard input, in UTF-8 (a line
that is not valid UTF-8 is an error naming the line, never echoed); output is one JSON object per
input line on standard output, always valid JSON (a non-finite number is written as ``null``).
A bad input, a bad argument value or a missing or damaged model is a one-line message on standard
error and exit code 1; a malformed command line is argparse's usage message and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator

# the stage that writes each command's default model, named in "train it first" hints
TRAIN_STAGES = {"sentiment": "train@sentiment", "segment": "train@segment", "ner": "train@ner",
                "similar": "train_word2vec", "similar-sentence": "train@similarity",
                "title": "train@seq2seq", "classify": "train_image", "cloze": "train@cloze",
                "vae": "train_vae", "nice": "train_nice", "gan": "train_gan"}
# the files each command's model folder must hold; checked before TensorFlow is imported, so a
# missing model is reported at once
_VOCAB_MODEL = ("model.keras", "vocab.json", "train_info.json")
MODEL_FILES = {"sentiment": _VOCAB_MODEL, "segment": (*_VOCAB_MODEL, "tags.json"),
               "ner": (*_VOCAB_MODEL, "tags.json"), "similar": ("vectors.npy",),
               "similar-sentence": ("model.keras", "train_info.json"), "title": _VOCAB_MODEL,
               "classify": ("model.keras", "train_info.json"), "cloze": _VOCAB_MODEL,
               "vae": ("encoder.keras", "decoder.keras", "train_info.json"),
               "nice": ("model.keras", "train_info.json"),
               "gan": ("generator.keras", "train_info.json")}
MAX_IMAGE_PIXELS = 25_000_000  # `classify` refuses larger pictures (decompression bombs)


class CliError(Exception):
    """A problem with the user's input or model: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _decode_lines(data: bytes, source: str) -> list[str]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, raw in enumerate(lines, 1):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise CliError(f"{source}: line {number} is not valid UTF-8 (byte {err.start + 1} of "
                           "the line): save the input as UTF-8") from None
    return out


def _read_stdin() -> list[str]:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream (tests, embedding): already decoded
        return [line.rstrip("\n") for line in sys.stdin]
    return _decode_lines(buffer.read(), "standard input")


def read_file_lines(path: str, option: str) -> list[str]:
    """The lines of a UTF-8 text file, or a :class:`CliError` naming the option and the problem."""
    if os.path.isdir(path):
        raise CliError(f"{option} {path} is a directory: give a text file, one item per line")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise CliError(f"cannot read {option} {path}: {err.strerror}") from None
    return _decode_lines(data, f"{option} {path}")


def _inputs(args: argparse.Namespace) -> list[str]:
    if args.text:
        return list(args.text)
    if args.file:
        return _read_stdin() if args.file == "-" else read_file_lines(args.file, "--file")
    if sys.stdin.isatty():
        raise CliError("give texts as arguments, --file PATH, or pipe them on stdin", code=2)
    return _read_stdin()


def _finite(node):
    """``node`` with every non-finite float replaced by None (JSON has no NaN or Infinity)."""
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, dict):
        return {k: _finite(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_finite(v) for v in node]
    return node


def load_model(command: str, loader, path, stage: str | None = None):
    """``loader(path)``, or a :class:`CliError` that says whether the model is missing or damaged
    and which stage writes it."""
    stage = stage or TRAIN_STAGES[command]
    try:
        return loader(path)
    except FileNotFoundError as err:
        raise CliError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - a damaged file surfaces as many error types
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CliError(f"cannot load the model in {path} ({type(err).__name__}: {detail}): it is "
                       f"damaged or from another version; retrain it (`dvc repro {stage}`)") from None


def check_model_dir(command: str, path) -> None:
    """A :class:`CliError` naming the first file of :data:`MODEL_FILES` missing from ``path`` and
    the stage that writes it (cheap: no TensorFlow import)."""
    folder = os.fspath(path)
    # a folder another stage writes for the same command (classify: models/center)
    stage = {"center": "train_center"}.get(os.path.basename(os.path.normpath(folder)),
                                           TRAIN_STAGES[command])
    for name in MODEL_FILES[command]:
        if not os.path.isfile(os.path.join(folder, name)):
            raise CliError(f"{os.path.join(folder, name)} not found: train the model first "
                           f"(`dvc repro {stage}`)")


def _positive(value: int, option: str) -> None:
    if value < 1:
        raise CliError(f"{option} must be >= 1, got {value}")


def _batched(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _emit(rows: Iterable[dict]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(_finite(row), ensure_ascii=False, allow_nan=False) + "\n")
    sys.stdout.flush()


def _serve(command: str, loader, args: argparse.Namespace, rows) -> int:
    """Load the command's model, run ``rows(model, texts)`` over the input in chunks and print
    its JSON lines."""
    texts = _inputs(args)
    model = load_model(command, loader, args.model)
    for chunk in _batched(texts, 1024):
        _emit(rows(model, chunk))
    return 0


def sentiment(args: argparse.Namespace) -> int:
    from kexue.families.sentiment_classifier import LABELS, SentimentClassifier

    def rows(clf, texts):
        probs = clf.predict_proba(texts)
        return ({"text": t, "label": LABELS[int(p >= 0.5)], "prob_pos": round(float(p), 4)}
                for t, p in zip(texts, probs, strict=True))

    return _serve("sentiment", SentimentClassifier, args, rows)


def segment(args: argparse.Namespace) -> int:
    from kexue.families.segment import Segmenter

    def rows(segmenter, texts):
        words = segmenter.cut(texts)
        return ({"text": t, "words": w} for t, w in zip(texts, words, strict=True))

    return _serve("segment", Segmenter, args, rows)


def ner(args: argparse.Namespace) -> int:
    from kexue.families.ner import Recognizer

    def rows(recognizer, texts):
        spans = recognizer.spans(texts)
        return ({"text": t,
                 "entities": [{"text": t[start:end], "type": kind, "start": start, "end": end}
                              for start, end, kind in s]}
                for t, s in zip(texts, spans, strict=True))

    return _serve("ner", Recognizer, args, rows)


def similar(args: argparse.Namespace) -> int:
    """Nearest neighbours (cosine) of each word in the trained word vectors."""
    from pathlib import Path

    _positive(args.k, "-k")
    # a bare name (word2vec | glove) is that family's folder under models/
    model = Path(f"models/{args.model}") if args.model in ("word2vec", "glove") else Path(args.model)
    stage = "train_glove" if model.name == "glove" else "train_word2vec"
    if not (model / "vectors.npy").is_file():
        raise CliError(f"{model} holds no trained vectors: train them first (`dvc repro {stage}`)")
    from kexue.text.word_vectors import WordVectors

    vectors = load_model("similar", WordVectors.load, model, stage)
    status = 0
    for word in args.word:
        if word not in vectors:
            print(f"kexue similar: '{word}' is not in the vocabulary of {model} "
                  f"({len(vectors.words)} words seen often enough in the tokenized corpora)",
                  file=sys.stderr)
            status = 1
            continue
        _emit([{"word": word, "model": str(model), "neighbours": [
            {"word": w, "cosine": s} for w, s in vectors.most_similar(word, args.k)]}])
    return status


def similar_sentence(args: argparse.Namespace) -> int:
    """The candidates (lines of ``--among``) nearest to each query sentence by the cosine of
    the similarity family's sentence vectors (the configured encoder, trained with AM-Softmax)."""
    import numpy as np

    from kexue.families.similarity import SentenceEncoder

    candidates = [line.strip() for line in read_file_lines(args.among, "--among") if line.strip()]
    if not candidates:
        print(f"kexue similar-sentence: --among {args.among} has no non-empty lines", file=sys.stderr)
        return 1
    if args.k < 1:
        print(f"kexue similar-sentence: -k must be >= 1, got {args.k}", file=sys.stderr)
        return 1
    texts = _inputs(args)
    encoder = load_model("similar-sentence", SentenceEncoder, args.model)
    candidate_vectors = encoder.vectors(candidates)  # (candidates, dim), unit rows
    for chunk in _batched(texts, 1024):
        scores = encoder.vectors(chunk) @ candidate_vectors.T  # (queries, candidates): cosines
        rows = []
        for text, row in zip(chunk, scores, strict=True):
            order = np.argsort(-row, kind="stable")[: args.k]
            rows.append({"text": text, "nearest": [
                {"sentence": candidates[i], "line": int(i) + 1, "cosine": round(float(row[i]), 4)}
                for i in order]})
        _emit(rows)
    return 0


def title(args: argparse.Namespace) -> int:
    """A headline for each text (an article's first paragraph) from the seq2seq family's model
    (beam search)."""
    from kexue.families.seq2seq import Headliner

    if args.beam is not None and args.beam < 1:
        print(f"kexue title: --beam must be >= 1, got {args.beam}", file=sys.stderr)
        return 1
    texts = _inputs(args)
    empty = [i for i, t in enumerate(texts, 1) if not t.strip()]
    if empty:
        print(f"kexue title: input {empty[0]} of {len(texts)} is empty: give each article's first "
              "paragraph as one non-empty line", file=sys.stderr)
        return 1
    model = load_model("title", Headliner, args.model)
    for chunk in _batched(texts, 256):
        _emit({"text": t, "title": headline, "log_prob": round(score, 4)}
              for t, (headline, score) in zip(chunk, model.titles(chunk, args.beam), strict=True))
    return 0


def classify(args: argparse.Namespace) -> int:
    """Fashion-MNIST class of each picture file (grey, resized to 28 × 28; see
    :func:`kexue.image_data.read_image`), with the top-k probabilities."""
    import numpy as np

    from kexue.families.image import load_classifier, predict_probs
    from kexue.image_data import read_image

    if args.k < 1:
        print(f"kexue classify: -k must be >= 1, got {args.k}", file=sys.stderr)
        return 1
    images = np.stack([_read_picture(read_image, path, args.invert) for path in args.image])  # (n, 28, 28)
    model, info = load_model("classify", load_classifier, args.model)
    classes = info["classes"]
    probs = predict_probs(model, images, tta=info["config"]["tta"])
    rows = []
    for path, row in zip(args.image, probs, strict=True):
        order = np.argsort(-row, kind="stable")[: args.k]
        rows.append({"image": path, "label": classes[int(order[0])],
                     "top": [{"label": classes[int(i)], "prob": round(float(row[i]), 4)} for i in order]})
    _emit(rows)
    return 0


def _read_picture(read_image, path: str, invert: str):
    """``read_image(path)`` with its size bounded (:data:`MAX_IMAGE_PIXELS`) and every problem
    of the file as a :class:`CliError`."""
    import warnings

    from PIL import Image

    if os.path.isdir(path):
        raise CliError(f"{path} is a directory: give picture files")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return read_image(path, invert)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CliError(f"{path}: more than {MAX_IMAGE_PIXELS:,} pixels: give a smaller picture "
                       "(Fashion-MNIST pictures are 28 x 28)") from None
    except FileNotFoundError as err:
        raise CliError(str(err)) from None
    except (OSError, ValueError, SyntaxError) as err:  # PIL raises all three for damaged files
        raise CliError(f"{path}: not a picture this command can read ({err})") from None


BLANK_MARKER = "___"  # three underscores mark the blank in a `kexue cloze` query


def _cut_tagged(text: str, pretagged: bool) -> list[tuple[str, str]]:
    """(word, PKU-style tag) pairs: ``word/tag`` tokens split on spaces (``--pretagged``, the
    corpus's own format), else jieba's POS cut (its n, nr, ns, nt, nz tags are PKU's; nrt and
    nrfg become nr)."""
    if pretagged:
        from kexue.corpora.people_daily import parse_line

        return parse_line(text)
    import jieba
    import jieba.posseg

    jieba.setLogLevel(60)
    return [(pair.word, "nr" if pair.flag.startswith("nr") else pair.flag)
            for pair in jieba.posseg.cut(text) if pair.word.strip()]


def cloze(args: argparse.Namespace) -> int:
    """Fill the blank of a query with a word of the document (the cloze family's attention-sum
    reader); candidates are the document's nouns and names, or all its words, as trained."""
    from kexue.corpora.cloze import BLANK, merge_person_names
    from kexue.families.cloze import ClozeReader

    marker = args.blank
    if not marker or args.query.count(marker) != 1:
        print(f"kexue cloze: the query must contain the blank marker {marker!r} exactly once "
              f"(found {args.query.count(marker) if marker else 0}), e.g. "
              f"'{marker}今天宣布了新的发现。'", file=sys.stderr)
        return 1
    if args.k < 1:
        print(f"kexue cloze: -k must be >= 1, got {args.k}", file=sys.stderr)
        return 1
    try:
        left, right = args.query.split(marker)
        query = [w for w, _ in _cut_tagged(left, args.pretagged)] + [BLANK] + [
            w for w, _ in _cut_tagged(right, args.pretagged)]
        document = merge_person_names(_cut_tagged(args.document, args.pretagged))
    except ValueError as err:
        print(f"kexue cloze: {err} (--pretagged expects 'word/tag' tokens separated by spaces)",
              file=sys.stderr)
        return 1
    if not document:
        print("kexue cloze: the document is empty", file=sys.stderr)
        return 1
    reader = load_model("cloze", ClozeReader, args.model)
    try:
        ranked = reader.rank(query, [w for w, _ in document], [t for _, t in document], args.k)
    except (FileNotFoundError, ValueError) as err:
        print(f"kexue cloze: {err}", file=sys.stderr)
        return 1
    _emit([{"query": args.query, "answer": ranked[0][0], "probability": round(ranked[0][1], 4),
            "candidates": [{"word": w, "probability": round(p, 4)} for w, p in ranked]}])
    return 0


GENERATORS = ("vae", "nice", "gan")  # `kexue generate FAMILY`: the generative families


def generate(args: argparse.Namespace) -> int:
    """A PNG grid of ``-n`` images sampled from a trained generative model (vae | nice | gan)."""
    import importlib

    if args.n < 1:
        print(f"kexue generate: -n must be >= 1, got {args.n}", file=sys.stderr)
        return 1
    if args.columns < 1:
        print(f"kexue generate: --columns must be >= 1, got {args.columns}", file=sys.stderr)
        return 1
    out = os.path.abspath(args.out)
    if os.path.isdir(out) or not out.lower().endswith(".png"):
        raise CliError(f"--out {args.out} must name a .png file to write")
    if not os.path.isdir(os.path.dirname(out)):
        raise CliError(f"--out {args.out}: the folder {os.path.dirname(out)} does not exist")
    name = args.family
    model_dir = args.model or f"models/{name}"
    check_model_dir(name, model_dir)
    from kexue.pixels import save_grid

    family = importlib.import_module(f"kexue.families.{name}")
    images = load_model(name, lambda path: family.sample(path, args.n, seed=args.seed), model_dir)
    save_grid(images, args.out, columns=min(args.columns, args.n))
    _emit([{"model": name, "images": int(len(images)), "out": args.out}])
    return 0


EXAMPLES = {
    "sentiment": ['kexue sentiment "这本书不错" "质量太差了"', "kexue sentiment --file reviews.txt"],
    "segment": ['kexue segment "结婚的和尚未结婚的"', "cat news.txt | kexue segment"],
    "ner": ['kexue ner "江泽民在北京会见了美国客人"'],
    "similar": ["kexue similar 北京 上海 -k 5", "kexue similar 北京 --model models/glove"],
    "similar-sentence": ['kexue similar-sentence "今天股市大涨" --among sentences.txt -k 3'],
    "title": ["kexue title --file first_paragraphs.txt --beam 4"],
    "classify": ["kexue classify shoe.png shirt.jpg -k 2", "kexue classify pic.png --model models/center"],
    "cloze": ['kexue cloze "北京是中国的首都。" "___是中国的首都。"'],
    "generate": ["kexue generate vae -n 16 --out vae.png", "kexue generate gan --model models/gan --out gan.png"],
}


def _add(sub, name: str, func, help_text: str, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    examples = "\n".join(f"  {line}" for line in EXAMPLES[name])
    also = f"\n\nalso called: {', '.join(aliases)}" if aliases else ""
    p = sub.add_parser(name, aliases=list(aliases), help=help_text, epilog=f"examples:\n{examples}{also}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func, name=name)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kexue", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show TensorFlow's and Keras's own log lines and warnings")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = (
        ("sentiment", sentiment, "positive/negative review sentiment", "classify"),
        ("segment", segment, "Chinese word segmentation", "segment"),
        ("ner", ner, "person / place / organisation names", "tag"),
    )
    for name, func, what, verb in commands:
        p = _add(sub, name, func, f"{what} (JSON lines out)")
        p.add_argument("text", nargs="*", help=f"texts to {verb} (default: --file or stdin)")
        p.add_argument("--file", help="read one text per line from this file ('-' = stdin)")
        p.add_argument("--model", default=f"models/{name}", help="trained model directory")
    p = _add(sub, "similar", similar, "nearest words in the trained word vectors (JSON lines out)",
             ("word-vectors",))
    p.add_argument("word", nargs="+", help="words to look up")
    p.add_argument("-k", type=int, default=10, help="neighbours per word (default 10)")
    p.add_argument("--model", default="models/word2vec",
                   help="trained vectors directory (default models/word2vec; models/glove for "
                        "Simpler GloVe; the bare names word2vec and glove also work)")
    p = _add(sub, "similar-sentence", similar_sentence,
             "nearest sentences among a file's lines by cosine (JSON lines out)", ("similarity",))
    p.add_argument("text", nargs="*", help="query sentences (default: --file or stdin)")
    p.add_argument("--among", required=True, help="candidate sentences, one per line")
    p.add_argument("-k", type=int, default=5, help="candidates per query (default 5)")
    p.add_argument("--file", help="read one query per line from this file ('-' = stdin)")
    p.add_argument("--model", default="models/similarity", help="trained model directory")
    p = _add(sub, "title", title, "a headline for an article's first paragraph (JSON lines out)",
             ("headline", "seq2seq"))
    p.add_argument("text", nargs="*", help="paragraphs (default: --file or stdin)")
    p.add_argument("--file", help="read one paragraph per line from this file ('-' = stdin)")
    p.add_argument("--beam", type=int, default=None,
                   help="beam search of this width (default: the decoding valid chose at training, the "
                   "extractive headline or the beam search of seq2seq.beam_size; 1 = greedy)")
    p.add_argument("--model", default="models/seq2seq", help="trained model directory")
    p = _add(sub, "classify", classify, "Fashion-MNIST class of picture files (JSON lines out)",
             ("image",))
    p.add_argument("image", nargs="+", help="picture files (PNG, JPEG, ...); made grey and 28 x 28")
    p.add_argument("-k", type=int, default=3, help="classes listed per image (default 3)")
    p.add_argument("--invert", choices=["auto", "yes", "no"], default="auto",
                   help="Fashion-MNIST is light on black: invert light-background pictures "
                        "(auto: when the border is light)")
    p.add_argument("--model", default="models/image",
                   help="trained model directory (models/image, or models/center: softmax + center loss)")
    p = _add(sub, "cloze", cloze, f"fill the blank ({BLANK_MARKER}) of a query with a word of a "
                                  "document (JSON line out)")
    p.add_argument("document", help="the text whose words are the candidates")
    p.add_argument("query", help=f"a sentence with the blank marked {BLANK_MARKER!r} once")
    p.add_argument("-k", type=int, default=5, help="candidates listed (default 5)")
    p.add_argument("--blank", default=BLANK_MARKER, help=f"the blank marker (default {BLANK_MARKER!r})")
    p.add_argument("--pretagged", action="store_true",
                   help="document and query are 'word/tag' tokens separated by spaces (People's "
                        "Daily style) rather than raw text cut by jieba")
    p.add_argument("--model", default="models/cloze", help="trained model directory")
    p = _add(sub, "generate", generate, "a PNG grid of images sampled from a trained generative "
                                        "model (JSON line out)")
    p.add_argument("family", choices=GENERATORS, help="vae | nice | gan")
    p.add_argument("--model", "--model-dir", default=None,
                   help="trained model directory (default models/<family>)")
    p.add_argument("-n", type=int, default=16, help="images to sample (default 16)")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--columns", type=int, default=8, help="images per row (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws (default 0)")
    return parser


def _quiet() -> None:
    """TensorFlow's C++ log lines (level 3: errors too; the command reports its own) and Python
    warnings off, before TensorFlow is imported."""
    import warnings

    if "tensorflow" not in sys.modules:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    warnings.filterwarnings("ignore")


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with this process's stderr (file descriptor 2) sent to /dev/null: on
    CPUs where oneDNN's custom operations are on, TensorFlow's C++ prints a notice at load time
    whatever ``TF_CPP_MIN_LOG_LEVEL`` says. An import error is still raised (stderr is restored
    first)."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w", encoding="utf-8") as null:
            os.dup2(null.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        _quiet()
    try:
        if args.name in MODEL_FILES and args.name not in ("similar",):
            check_model_dir(args.name, args.model)
            if not args.verbose:  # the model is there: TensorFlow loads it, without its notices
                _import_tensorflow_quietly()
        return args.func(args)
    except CliError as err:
        print(f"kexue {args.command}: {err}", file=sys.stderr)
        return err.code
    except BrokenPipeError:  # the reader closed the pipe (e.g. `| head`): nothing more to say
        return 0


if __name__ == "__main__":
    sys.exit(main())
