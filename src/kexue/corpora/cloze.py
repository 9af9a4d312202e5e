"""Automatic cloze from People's Daily articles, built as the HIT People Daily dataset is.

Cui et al. ("Consensus Attention-based Neural Networks for Chinese Reading Comprehension",
COLING 2016) made a cloze set from news with no human labelling: pick a noun or named entity
that occurs again elsewhere in the article, take one sentence that contains it as the query
with the word blanked, and give the rest of the article as the document; the answer is a
document word. 苏剑林's attention-sum reader ("开学啦！咱们来做完形填空", kexue.fm/archives/4564,
the `cloze` family) is trained on such samples.

Here the articles are those of stage `prepare_articles` (:mod:`kexue.corpora.articles`: the
same chronological train/valid/test split, article by article), whose lines are looked up again
in the POS-tagged corpus (PKU tags: n noun, nr person, ns place, nt organisation, nz other
proper noun, ...), since the prepared articles keep the text only. Per article:

- **words**: the PKU words with their tags; a surname and a given name tagged nr in sequence
  (江/nr 泽民/nr) are merged into one person word (江泽民/nr), as the NER labels merge them;
- **sentences**: the headline is sentence 0, then each body line is cut after sentence-final
  punctuation words (。！？… and their ASCII forms) together with the closing quotes after them;
- **queries**: each body sentence of ``min_query_words``..``max_query_words`` words is a query
  if it holds an *eligible* word: a tag among ``answer_tags``, exactly once in the sentence
  (so the blanked query does not show it), at least ``min_document_occurrences`` times in the
  other sentences (the document) under one of those tags (so it is a document noun). ``answers_per_sentence`` eligible words are drawn per
  sentence (seeded by ``(seed, article index)``), each making one sample.

A sample's document is every sentence of the article but its query, in order (the headline
included), so the answer is always a document word and the query sentence never is part of it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kexue.corpora.people_daily import Tagged, read_tagged
from kexue.io import read_json, read_jsonl

BLANK = "<blank>"  # the token that stands in for the answer in a query
SENTENCE_FINAL = re.compile(r"^[。！？!?…]+$")
CLOSERS = set("”’』」》）)]")
DEFAULT_ANSWER_TAGS = ("n", "nr", "ns", "nt", "nz")


def merge_person_names(tagged: Tagged) -> Tagged:
    """Consecutive nr words become one (``江/nr 泽民/nr`` → ``江泽民/nr``)."""
    out: Tagged = []
    for word, pos in tagged:
        if pos == "nr" and out and out[-1][1] == "nr":
            out[-1] = (out[-1][0] + word, "nr")
        else:
            out.append((word, pos))
    return out


def tagged_sentences(tagged: Tagged) -> list[Tagged]:
    """Cut a tagged line after sentence-final punctuation words, keeping the closing quotes
    and brackets that follow with the sentence; whitespace-only words are dropped."""
    sentences: list[Tagged] = []
    current: Tagged = []
    ended = False
    for word, pos in tagged:
        if not word.strip():
            continue
        if ended and not all(ch in CLOSERS for ch in word):
            sentences.append(current)
            current, ended = [], False
        current.append((word, pos))
        if SENTENCE_FINAL.match(word):
            ended = True
    if current:
        sentences.append(current)
    return sentences


def tag_articles(articles: Sequence[dict], tagged_lines: Sequence[Tagged]) -> list[list[Tagged]]:
    """Each article's sentences with their tags: its headline (the line numbered ``line``,
    1-based) and its body lines, found again in order among the tagged lines that follow the
    headline (sub-headlines and captions between them are passed over)."""
    out = []
    for article in articles:
        index = article["line"] - 1
        if not 0 <= index < len(tagged_lines):
            raise ValueError(f"article {article['id']}: line {article['line']} is outside the tagged "
                             f"corpus ({len(tagged_lines)} lines); rerun prepare_articles")
        headline = [(w, p) for w, p in tagged_lines[index] if w.strip()]
        if "".join(w for w, _ in tagged_lines[index]).strip() != article["headline"]:
            raise ValueError(f"article {article['id']}: line {article['line']} of the tagged corpus "
                             f"is not its headline {article['headline'][:20]!r}; rerun prepare_articles")
        body: list[Tagged] = []
        cursor = index + 1
        for text in article["body"]:
            while cursor < len(tagged_lines):
                words = tagged_lines[cursor]
                cursor += 1
                if "".join(w for w, _ in words).strip() == text:
                    body.append(words)
                    break
            else:
                raise ValueError(f"article {article['id']}: body line {text[:20]!r} not found after "
                                 f"line {article['line']} of the tagged corpus; rerun prepare_articles")
        sentences = [merge_person_names(headline)]
        for line in body:
            sentences.extend(tagged_sentences(merge_person_names(line)))
        out.append([s for s in sentences if s])
    return out


def choose_queries(sentences: Sequence[Tagged], rng: np.random.Generator, answer_tags: Sequence[str],
                   min_query_words: int, max_query_words: int, min_document_occurrences: int,
                   answers_per_sentence: int) -> list[dict]:
    """Queries ``{"sentence", "position", "answer"}`` of one article (see the module docstring);
    sentence 0 (the headline) is never a query."""
    tags = set(answer_tags)
    as_answer_kind = Counter(w for sentence in sentences for w, pos in sentence if pos in tags)
    queries = []
    for index, sentence in enumerate(sentences):
        if index == 0 or not min_query_words <= len(sentence) <= max_query_words:
            continue
        own = Counter(w for w, _ in sentence)
        eligible = [position for position, (word, pos) in enumerate(sentence)
                    if pos in tags and own[word] == 1
                    and as_answer_kind[word] - 1 >= min_document_occurrences]
        if not eligible:
            continue
        picked = rng.choice(len(eligible), size=min(answers_per_sentence, len(eligible)), replace=False)
        for k in sorted(picked):
            position = eligible[k]
            queries.append({"sentence": index, "position": position, "answer": sentence[position][0]})
    return queries


def build_split(articles: Sequence[dict], tagged: Sequence[list[Tagged]], seed: int, *,
                answer_tags: Sequence[str], min_query_words: int, max_query_words: int,
                min_document_occurrences: int, answers_per_sentence: int,
                first_index: int = 0) -> list[dict]:
    """One row per article that has queries: ``{"id", "words", "tags", "queries"}``, with
    ``words``/``tags`` one list per sentence. Article ``k`` of the split draws from
    ``default_rng([seed, first_index + k])`` (``first_index`` keeps streams distinct across
    splits)."""
    rows = []
    for k, (article, sentences) in enumerate(zip(articles, tagged, strict=True)):
        rng = np.random.default_rng([seed, first_index + k])
        queries = choose_queries(sentences, rng, answer_tags, min_query_words, max_query_words,
                                 min_document_occurrences, answers_per_sentence)
        if queries:
            rows.append({"id": article["id"], "words": [[w for w, _ in s] for s in sentences],
                         "tags": [[p for _, p in s] for s in sentences], "queries": queries})
    return rows


@dataclass(frozen=True)
class ClozeSample:
    """One cloze: ``query`` holds :data:`BLANK` where the answer (tagged ``answer_tag`` in the
    query sentence) was; ``document`` (with ``document_tags``) is the article without the query
    sentence; ``offset`` is the number of document words before the place the query sentence
    was cut from."""

    id: str
    query: list[str]
    document: list[str]
    document_tags: list[str]
    answer: str
    answer_tag: str
    offset: int


def samples(rows: Sequence[dict]) -> Iterator[ClozeSample]:
    """The samples of prepared rows (:func:`build_split`), in order."""
    for row in rows:
        words, tags = row["words"], row["tags"]
        for number, q in enumerate(row["queries"]):
            index, position = q["sentence"], q["position"]
            query = list(words[index])
            if query[position] != q["answer"]:
                raise ValueError(f"{row['id']}: query {number} says word {position} of sentence "
                                 f"{index} is {q['answer']!r}, it is {query[position]!r}")
            query[position] = BLANK
            document = [w for i, s in enumerate(words) if i != index for w in s]
            document_tags = [t for i, s in enumerate(tags) if i != index for t in s]
            offset = sum(len(s) for s in words[:index])
            yield ClozeSample(f"{row['id']}-{number}", query, document, document_tags,
                              q["answer"], tags[index][position], offset)


def read_corpus(raw_dir: str | Path) -> list[Tagged]:
    path = Path(raw_dir) / "199801.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the acquire stage (`dvc repro acquire`)")
    return read_tagged(path)


def split_counts(rows: Sequence[dict]) -> dict:
    """Articles, samples, distinct answers, mean document length and the answers' tags."""
    answers: Counter = Counter()
    samples_n = documents = 0
    tags_of_answers: Counter = Counter()
    for row in rows:
        for q in row["queries"]:
            samples_n += 1
            answers[q["answer"]] += 1
            tags_of_answers[row["tags"][q["sentence"]][q["position"]]] += 1
            documents += sum(len(s) for i, s in enumerate(row["words"]) if i != q["sentence"])
    return {"articles": len(rows), "samples": samples_n, "distinct_answers": len(answers),
            "mean_document_words": round(documents / max(samples_n, 1), 1),
            "answer_tags": dict(sorted(tags_of_answers.items()))}


def candidate_keys(document: Sequence[str], tags: Sequence[str], answer_tags: Sequence[str] | None
                   ) -> list[int]:
    """Per document position, the key of its word among the candidates (1, 2, ... in order of
    first occurrence), or 0 if the word is not a candidate. A candidate is a word with at least
    one occurrence under ``answer_tags`` (every word when ``answer_tags`` is None); all its
    positions share its key, whatever their tags."""
    allowed = set(answer_tags) if answer_tags is not None else None
    is_candidate = {w for w, t in zip(document, tags, strict=True) if allowed is None or t in allowed}
    keys: dict[str, int] = {}
    out = []
    for word in document:
        if word in is_candidate:
            out.append(keys.setdefault(word, len(keys) + 1))
        else:
            out.append(0)
    return out


# --- the prepare_cloze stage's files, read back --------------------------------------------


def load_samples(data_dir: str | Path, split: str) -> list[ClozeSample]:
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro prepare_cloze`")
    out = list(samples(read_jsonl(path)))
    if not out:
        raise ValueError(f"{path} has no cloze samples: check the prepare_cloze params")
    return out


def load_meta(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro prepare_cloze`")
    return read_json(path)
