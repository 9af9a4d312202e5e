"""`kexue <task> ...`: run the trained models of the pipeline on new text.

Input is the positional texts, or the lines of ``--file``, or standard input; output is one JSON
object per input line on standard output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator


def _inputs(args: argparse.Namespace) -> list[str]:
    if args.text:
        return list(args.text)
    if args.file:
        if args.file == "-":
            return [line.rstrip("\n") for line in sys.stdin]
        with open(args.file, encoding="utf-8") as handle:
            return [line.rstrip("\n") for line in handle]
    if sys.stdin.isatty():
        raise SystemExit("kexue: give texts as arguments, --file PATH, or pipe them on stdin")
    return [line.rstrip("\n") for line in sys.stdin]


def _batched(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _emit(rows: Iterable[dict]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _serve(command: str, loader, args: argparse.Namespace, rows) -> int:
    """Load the command's model, run ``rows(model, texts)`` over the input in chunks and print
    its JSON lines; a missing model is a one-line error and exit code 1."""
    texts = _inputs(args)
    try:
        model = loader(args.model)
    except FileNotFoundError as err:
        print(f"kexue {command}: {err}", file=sys.stderr)
        return 1
    for chunk in _batched(texts, 1024):
        _emit(rows(model, chunk))
    return 0


def sentiment(args: argparse.Namespace) -> int:
    from kexue.families.sentiment import LABELS, SentimentClassifier

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

    from kexue.text.word_vectors import WordVectors

    model = Path(f"models/{args.model}") if args.model in ("word2vec", "glove") else Path(args.model)
    try:
        vectors = WordVectors.load(model)
    except FileNotFoundError as err:
        print(f"kexue similar: {err}", file=sys.stderr)
        return 1
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

    try:
        with open(args.among, encoding="utf-8") as handle:
            candidates = [line.strip() for line in handle if line.strip()]
    except OSError as err:
        print(f"kexue similar-sentence: cannot read --among {args.among}: {err.strerror}",
              file=sys.stderr)
        return 1
    if not candidates:
        print(f"kexue similar-sentence: --among {args.among} has no non-empty lines", file=sys.stderr)
        return 1
    if args.k < 1:
        print(f"kexue similar-sentence: -k must be >= 1, got {args.k}", file=sys.stderr)
        return 1
    texts = _inputs(args)
    try:
        encoder = SentenceEncoder(args.model)
    except FileNotFoundError as err:
        print(f"kexue similar-sentence: {err}", file=sys.stderr)
        return 1
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
    try:
        model = Headliner(args.model)
    except FileNotFoundError as err:
        print(f"kexue title: {err}", file=sys.stderr)
        return 1
    for chunk in _batched(texts, 256):
        _emit({"text": t, "title": headline, "log_prob": round(score, 4)}
              for t, (headline, score) in zip(chunk, model.titles(chunk, args.beam), strict=True))
    return 0


def classify(args: argparse.Namespace) -> int:
    """Fashion-MNIST class of each picture file (grey, resized to 28 × 28; see
    :func:`kexue.families.image.read_image`), with the top-k probabilities."""
    import numpy as np

    from kexue.families.image import load_classifier, predict_probs, read_image

    if args.k < 1:
        print(f"kexue classify: -k must be >= 1, got {args.k}", file=sys.stderr)
        return 1
    try:
        images = np.stack([read_image(path, args.invert) for path in args.image])  # (n, 28, 28)
    except (FileNotFoundError, ValueError) as err:
        print(f"kexue classify: {err}", file=sys.stderr)
        return 1
    try:
        model, info = load_classifier(args.model)
    except FileNotFoundError as err:
        print(f"kexue classify: {err}", file=sys.stderr)
        return 1
    classes = info["classes"]
    probs = predict_probs(model, images, tta=info["config"]["tta"])
    rows = []
    for path, row in zip(args.image, probs, strict=True):
        order = np.argsort(-row, kind="stable")[: args.k]
        rows.append({"image": path, "label": classes[int(order[0])],
                     "top": [{"label": classes[int(i)], "prob": round(float(row[i]), 4)} for i in order]})
    _emit(rows)
    return 0


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
    try:
        reader = ClozeReader(args.model)
        ranked = reader.rank(query, [w for w, _ in document], [t for _, t in document], args.k)
    except (FileNotFoundError, ValueError) as err:
        print(f"kexue cloze: {err}", file=sys.stderr)
        return 1
    _emit([{"query": args.query, "answer": ranked[0][0], "probability": round(ranked[0][1], 4),
            "candidates": [{"word": w, "probability": round(p, 4)} for w, p in ranked]}])
    return 0


GENERATORS = ("vae", "nice", "gan")  # `kexue generate --model ...`: the generative families


def generate(args: argparse.Namespace) -> int:
    """A PNG grid of ``-n`` images sampled from a trained generative model (vae | nice | gan)."""
    import importlib

    from kexue.families._generative import save_grid

    if args.n < 1:
        print(f"kexue generate: -n must be >= 1, got {args.n}", file=sys.stderr)
        return 1
    if args.columns < 1:
        print(f"kexue generate: --columns must be >= 1, got {args.columns}", file=sys.stderr)
        return 1
    family = importlib.import_module(f"kexue.families.{args.model}")
    try:
        images = family.sample(args.model_dir or f"models/{args.model}", args.n, seed=args.seed)
    except FileNotFoundError as err:
        print(f"kexue generate: {err}", file=sys.stderr)
        return 1
    save_grid(images, args.out, columns=min(args.columns, args.n))
    _emit([{"model": args.model, "images": int(len(images)), "out": args.out}])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kexue", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    commands = (
        ("sentiment", sentiment, "positive/negative review sentiment", "classify"),
        ("segment", segment, "Chinese word segmentation", "segment"),
        ("ner", ner, "person / place / organisation names", "tag"),
    )
    for name, func, what, verb in commands:
        p = sub.add_parser(name, help=f"{what} (JSON lines out)")
        p.add_argument("text", nargs="*", help=f"texts to {verb} (default: --file or stdin)")
        p.add_argument("--file", help="read one text per line from this file ('-' = stdin)")
        p.add_argument("--model", default=f"models/{name}", help="trained model directory")
        p.set_defaults(func=func)
    p = sub.add_parser("similar", help="nearest words in the trained word vectors (JSON lines out)")
    p.add_argument("word", nargs="+", help="words to look up")
    p.add_argument("-k", type=int, default=10, help="neighbours per word (default 10)")
    p.add_argument("--model", default="word2vec",
                   help="word2vec | glove (models/<name>) or a vectors directory")
    p.set_defaults(func=similar)
    p = sub.add_parser("similar-sentence",
                       help="nearest sentences among a file's lines by cosine (JSON lines out)")
    p.add_argument("text", nargs="*", help="query sentences (default: --file or stdin)")
    p.add_argument("--among", required=True, help="candidate sentences, one per line")
    p.add_argument("-k", type=int, default=5, help="candidates per query (default 5)")
    p.add_argument("--file", help="read one query per line from this file ('-' = stdin)")
    p.add_argument("--model", default="models/similarity", help="trained model directory")
    p.set_defaults(func=similar_sentence)
    p = sub.add_parser("title", help="a headline for an article's first paragraph (JSON lines out)")
    p.add_argument("text", nargs="*", help="paragraphs (default: --file or stdin)")
    p.add_argument("--file", help="read one paragraph per line from this file ('-' = stdin)")
    p.add_argument("--beam", type=int, default=None,
                   help="beam size (default: the model's seq2seq.beam_size; 1 = greedy)")
    p.add_argument("--model", default="models/seq2seq", help="trained model directory")
    p.set_defaults(func=title)
    p = sub.add_parser("classify", help="Fashion-MNIST class of picture files (JSON lines out)")
    p.add_argument("image", nargs="+", help="picture files (PNG, JPEG, ...); made grey and 28 x 28")
    p.add_argument("-k", type=int, default=3, help="classes listed per image (default 3)")
    p.add_argument("--invert", choices=["auto", "yes", "no"], default="auto",
                   help="Fashion-MNIST is light on black: invert light-background pictures "
                        "(auto: when the border is light)")
    p.add_argument("--model", default="models/image", help="trained model directory")
    p.set_defaults(func=classify)
    p = sub.add_parser("cloze", help=f"fill the blank ({BLANK_MARKER}) of a query with a word of a "
                                     "document (JSON line out)")
    p.add_argument("document", help="the text whose words are the candidates")
    p.add_argument("query", help=f"a sentence with the blank marked {BLANK_MARKER!r} once")
    p.add_argument("-k", type=int, default=5, help="candidates listed (default 5)")
    p.add_argument("--blank", default=BLANK_MARKER, help=f"the blank marker (default {BLANK_MARKER!r})")
    p.add_argument("--pretagged", action="store_true",
                   help="document and query are 'word/tag' tokens separated by spaces (People's "
                        "Daily style) rather than raw text cut by jieba")
    p.add_argument("--model", default="models/cloze", help="trained model directory")
    p.set_defaults(func=cloze)
    p = sub.add_parser("generate", help="a PNG grid of images sampled from a trained generative "
                                        "model (JSON line out)")
    p.add_argument("--model", choices=GENERATORS, required=True, help="vae | nice | gan")
    p.add_argument("-n", type=int, default=16, help="images to sample (default 16)")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--columns", type=int, default=8, help="images per row (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws (default 0)")
    p.add_argument("--model-dir", default=None, help="trained model directory (default models/<model>)")
    p.set_defaults(func=generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
