"""The ner peers (stage ``baselines@ner``), still written beside the model in
:mod:`kexue.families.ner`."""

from kexue.families.ner import BaselineConfig, baselines
from kexue.families.ner import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
