"""Measuring outputs: the metric suite (`metrics/`), calibration (temperature), conformal sets and
abstention, chunk-to-document aggregation, the figures, and the run record (`metrics.json`).

Numbers over logits and labels: it imports only the shared leaves, so every other wing can measure.
"""
