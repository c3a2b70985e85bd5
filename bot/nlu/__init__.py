"""The embedded NLU: ONNX sentence encoder, calibrated intents, entity extraction.

An int8 all-MiniLM-L6-v2 encoder feeds a calibrated intent classifier with
out-of-scope detection; regex and lookup extractors find entities. Serving
needs only ONNX Runtime, ``tokenizers`` and numpy; preparing the encoder
(:func:`bot.nlu.encoder.prepare_encoder`) uses Optimum once.
"""
