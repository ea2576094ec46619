"""The data: reading files and Hub datasets, their checks, label encoding and task inference, splits,
tokenizing, and long texts (truncation modes, chunk windows, length reports).

It may import `config`, `evaluation` and the shared leaves; it never touches a model.
"""
