"""The image peers (stage ``baselines@image``), still written beside the model in
:mod:`kexue.families.image`."""

from kexue.families.image import BaselineConfig, baselines
from kexue.families.image import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
