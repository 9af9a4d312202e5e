"""The cloze peers (stage ``baselines@cloze``), still written beside the model in
:mod:`kexue.families.cloze`."""

from kexue.families.cloze import BaselineConfig, baselines
from kexue.families.cloze import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
