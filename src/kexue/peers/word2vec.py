"""The word2vec peers (stage ``baselines@word2vec``), still written beside the model in
:mod:`kexue.families.word2vec`."""

from kexue.families.word2vec import BaselineConfig, baselines
from kexue.families.word2vec import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
