"""The segment peers (stage ``baselines@segment``), still written beside the model in
:mod:`kexue.families.segment`."""

from kexue.families.segment import BaselineConfig, baselines
from kexue.families.segment import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
