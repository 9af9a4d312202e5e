"""Keras 3 layers of the recipes (written with ``keras.ops``, serialisable with ``get_config``)."""

from kexue.layers.pooling import MaskedGlobalMaxPooling1D

__all__ = ["MaskedGlobalMaxPooling1D"]
