"""The multilabel peers (stage ``baselines@multilabel``), still written beside the model in
:mod:`kexue.families.multilabel`."""

from kexue.families.multilabel import BaselineConfig, baselines
from kexue.families.multilabel import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
