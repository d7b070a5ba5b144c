"""The error type of zerocon's front ends: one line for the user (and, on the command line, an exit code)."""

from __future__ import annotations


class InputError(Exception):
    """A bad input or environment problem, reported as one line.

    Args:
        message: the one-line message (newlines are replaced by spaces).
        exit_code: the process exit code (default 2, argparse's code for usage errors).
        per_image: the problem belongs to one input of a batch, not to the whole run.

    Examples:
        >>> str(InputError("no such file"))
        'no such file'
    """

    def __init__(self, message: str, exit_code: int = 2, per_image: bool = False) -> None:
        super().__init__(" ".join(str(message).split()))
        self.exit_code = exit_code
        #: A problem of one input: a batch marks that image as failed and goes on.
        self.per_image = per_image
