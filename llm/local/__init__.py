"""The local model: Optimum export and quantization, ONNX Runtime generation."""
