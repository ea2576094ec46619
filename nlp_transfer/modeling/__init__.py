"""The model: checkpoints (name -> folder), the architecture view of every supported encoder (`layers`),
the pooled heads and their initialisation, the transfer strategies (`strategies/`), optimizer parameter groups
and FLOP counts of a step.

It may import `config`, `evaluation` and the shared leaves; it never reads data files.
"""
