"""The error type of the command line: one line for the user, a non-zero exit code.

It is [`InputError`][zerocon.files.InputError], shared with the web page (``zerocon.files``).
"""

from __future__ import annotations

from zerocon.files.errors import InputError

#: The command line's name for [`InputError`][zerocon.files.InputError] (one class, two names).
CliError = InputError

__all__ = ["CliError"]
