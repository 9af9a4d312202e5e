"""The ode peers (stage ``baselines@ode``), still written beside the model in
:mod:`kexue.families.ode`."""

from kexue.families.ode import BaselineConfig, baselines
from kexue.families.ode import Config as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines"]
