"""``argparse`` types that reject bad numbers at parse time (exit code 2, one line)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def finite_float(low: float | None = None, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    """An ``argparse`` type: a finite float within ``[low, high]`` (``(low, high]`` if ``low_open``).

    Examples:
        >>> finite_float(1.0)("5")
        5.0
        >>> finite_float(1.0)("nan")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: 'nan' is not a finite number
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if low_open else '>='} {low:g}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} must be <= {high:g}")
        return value

    return parse




def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An ``argparse`` type: an integer ``>= low`` (and ``<= high`` when given).

    Examples:
        >>> whole_number(1)("20")
        20
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} must be >= {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} must be <= {high}")
        return value

    return parse
