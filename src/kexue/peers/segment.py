"""The open-track segmentation peers (stage ``baselines@segment``): jieba with HMM on and off,
forward maximum matching with the training vocabulary, and the ``segment`` network with a
per-character softmax instead of the CRF (the ablation that shows what the transitions add).
Each reports SIGHAN scores on valid and test, characters per second and per-line word counts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from kexue.config import require_network
from kexue.corpora.people_daily import load_rows
from kexue.families import segment
from kexue.peers.dictionary import jieba_cutter, max_match
from kexue.peers.segmentation import score_segmenter
from kexue.tagging import TaggerConfig as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]


@dataclass(frozen=True)
class BaselineConfig:
    jieba: bool  # jieba 0.42 with its own dictionary, HMM for unknown words on and off
    max_match_longest: int = field(metadata={"min": 1})  # longest word tried by maximum matching (0 = off)
    softmax_ablation: bool  # train the `segment` network with a per-character softmax instead of the CRF


def baselines(cfg: BaselineConfig, data_dir: str | Path, work_dir: str | Path | None = None,
              network: NetworkConfig | None = None) -> dict:
    """Peers on the same valid and test lines, each with its SIGHAN scores, characters per second
    and per-line word counts (``items``, for the comparison)."""
    data_dir = Path(data_dir)
    train_rows = load_rows(data_dir, "train")
    vocab = {w for r in train_rows for w in r["words"]}
    peers: dict = {}
    splits = {s: load_rows(data_dir, s) for s in ("test", "valid")}

    def score(name: str, cut, extra: dict | None = None) -> None:
        peers[name] = {**score_segmenter(cut, splits, vocab), **(extra or {})}

    if cfg.jieba:
        score("jieba_hmm", jieba_cutter(hmm=True))
        score("jieba_no_hmm", jieba_cutter(hmm=False))
    if cfg.max_match_longest:
        score("max_match", lambda texts: [max_match(t, vocab, cfg.max_match_longest) for t in texts])
    if cfg.softmax_ablation:
        import tempfile

        net = dataclasses.replace(require_network(network, "segment"), head="softmax")
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            info = segment.train(net, data_dir, Path(tmp) / "model", None, None,
                                 family="segment_softmax")
            segmenter = segment.Segmenter(Path(tmp) / "model")
            score("softmax_ablation", segmenter.cut,
                  {"train_seconds": info["train_seconds"], "epochs_run": info["epochs_run"]})
    return peers
