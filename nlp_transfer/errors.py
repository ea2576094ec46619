"""The exceptions the CLI turns into a message and an exit code instead of a traceback.

Everything the user can fix (a missing file, an unknown column, an invalid label) is raised as a
`UserInputError`: the CLI prints its message as one paragraph and exits with code 2, without a
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input that the user can fix; the message says what is wrong and what to do."""

    exit_code = 2


class TrainingInterrupted(Exception):
    """Training stopped on a signal; the message says where the checkpoint is and how to resume.

    Here, not in `resume`, so that the CLI can catch it without importing transformers.
    """

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number  # the shell's convention for "ended by signal N"
