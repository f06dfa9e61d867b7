"""Training (the only package that imports torch)."""
