"""kexue: Keras 3 recipes from the 科学空间 (kexue.fm) blog, as a reproducible DVC pipeline."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU feature notes) hides real warnings in stage logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
