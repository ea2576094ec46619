"""The one exception type for bad user input.

Everything the user can fix (a missing file, an unknown column, an invalid label) is raised as a
`UserInputError`: the CLI prints its message as one paragraph and exits with code 2, without a
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input that the user can fix; the message says what is wrong and what to do."""

    exit_code = 2
