"""Entry point of the `nlp-transfer` console script.

It lives outside the package so that it is imported before it: `import nlp_transfer` registers the package's
pooled heads with transformers' Auto classes, which imports torch (seconds), unless this module is loaded. The
commands register the heads themselves where they need them, so `--help` and argument errors answer at once.
"""

from __future__ import annotations


def main() -> int:
    from nlp_transfer.cli.app import main as run_command

    return run_command()
