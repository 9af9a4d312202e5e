"""The similarity peers (stage ``baselines@similarity``), still written beside the model in
:mod:`kexue.families.similarity`."""

from kexue.families.similarity import BaselineConfig, baselines
from kexue.families.similarity import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
