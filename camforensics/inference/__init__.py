"""onnxruntime sessions and the hash-checked model registry."""
