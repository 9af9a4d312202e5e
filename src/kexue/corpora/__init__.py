"""Readers for the raw corpora: acquisition (`sources`), reviews, People's Daily, Fashion-MNIST."""
