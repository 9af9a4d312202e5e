"""The center peers (stage ``baselines@center``), still written beside the model in
:mod:`kexue.families.center`."""

from kexue.families.center import BaselineConfig, baselines
from kexue.families.center import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
