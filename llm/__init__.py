"""Language models: local ONNX generation, cloud fallback, retrieval."""
