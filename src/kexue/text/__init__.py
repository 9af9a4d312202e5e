"""Text utilities: vocabularies, word discovery, adversarial split, augmentation."""
