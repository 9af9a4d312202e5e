"""The practitioners' tools the recipes are compared with, each from its own library."""
