"""Generated and real headlines of test articles side by side (stage ``headline_examples``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kexue.corpora.prepared_articles import headline_pairs, load_articles
from kexue.families.seq2seq import Headliner
from kexue.peers.seq2seq import lead_headline
from kexue.text.rouge import rouge_scores


def example_rows(model_dir: str | Path, data_dir: str | Path, articles: int = 20) -> list[dict]:
    """``articles`` test articles spread evenly over the split (chronological), each with its
    paragraph, real headline, the model's headline (by the decoding valid chose; its ROUGE-L),
    the beam search's headline (the network's decoder alone), and the lead peer's."""
    if articles < 1:
        raise ValueError(f"example_rows: articles must be >= 1, got {articles}")
    model = Headliner(model_dir)
    test = load_articles(data_dir, "test")
    picked = sorted({round(i * (len(test) - 1) / max(articles - 1, 1))
                     for i in range(min(articles, len(test)))})
    chosen = [test[i] for i in picked]
    texts, references = headline_pairs(chosen, model.cfg.strip_headline_notes)
    generated = [title for title, _ in model.titles(texts)]
    beam = [title for title, _ in model.abstractive(texts)]
    chars = model.info["median_headline_chars"]
    return [{"id": a["id"], "paragraph": text, "headline": ref, "generated": gen, "beam": b,
             "lead": lead_headline(text, chars),
             "rougeL": round(rouge_scores([ref], [gen])["rougeL"], 4),
             "beam_rougeL": round(rouge_scores([ref], [b])["rougeL"], 4)}
            for a, text, ref, gen, b in zip(chosen, texts, references, generated, beam, strict=True)]


def _cell(text: str) -> str:
    return text.replace("|", "｜").replace("\n", " ")


def examples_markdown(rows: Sequence[dict], paragraph_chars: int = 60) -> str:
    """The example rows as a Markdown table (paragraphs cut to ``paragraph_chars``)."""
    lines = ["| # | article | real headline | kexue headline | ROUGE-L | beam search alone | ROUGE-L | "
             "lead peer | paragraph |", "|---|---|---|---|---|---|---|---|---|"]
    for i, row in enumerate(rows, 1):
        head = row["paragraph"][:paragraph_chars] + ("…" if len(row["paragraph"]) > paragraph_chars else "")
        lines.append(f"| {i} | {row['id']} | {_cell(row['headline'])} | {_cell(row['generated'])} | "
                     f"{row['rougeL']:.2f} | {_cell(row['beam'])} | {row['beam_rougeL']:.2f} | "
                     f"{_cell(row['lead'])} | {_cell(head)} |")
    return "\n".join(lines) + "\n"
