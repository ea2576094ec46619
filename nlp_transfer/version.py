"""The package version: a leaf module, so any module (and pyproject.toml) reads it without importing the package."""

__version__ = "0.1.0"
