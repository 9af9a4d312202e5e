"""The segment_closed peers (stage ``baselines@segment_closed``), still written beside the model in
:mod:`kexue.families.segment_closed`."""

from kexue.families.segment_closed import BaselineConfig, baselines
from kexue.families.segment_closed import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
