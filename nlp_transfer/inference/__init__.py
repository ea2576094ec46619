"""Using a saved folder: loading it (`predict.load_classifier`), predicting, scoring it on a labelled file
(`nlp-transfer evaluate`), the ONNX runtime classifier, and export to ONNX.

It may import `hub`, `modeling`, `data`, `config`, `evaluation` and the shared leaves.
"""
