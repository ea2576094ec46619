"""The run options: one module per argument group (model, data, strategy, evaluation, training), and their
validation in one place (`RunConfig.validate`).

It may import `evaluation` (the metric names --metrics may name) and the shared leaves, nothing else: data,
models and training all read the options, so the options read none of them.
"""
