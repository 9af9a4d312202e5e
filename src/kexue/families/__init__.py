"""One module per model family; each exposes ``Config``, ``train``, ``evaluate`` and ``baselines``."""
