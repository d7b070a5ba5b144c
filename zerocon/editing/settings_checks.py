"""The value checks every settings object shares: each names the field it refuses."""

from __future__ import annotations

import json
import math
import re
from typing import Any


def finite(name: str, value: Any, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:
    """``value`` as a float, refused unless finite and within ``[low, high]`` (``(low, high]`` when ``low_open``).

    Raises:
        ValueError: naming ``name``.

    Examples:
        >>> finite("scale", 2)
        2.0
        >>> finite("scale", -1, low=0.0)
        Traceback (most recent call last):
        ...
        ValueError: scale must be >= 0, got -1
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (number <= low if low_open else number < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and number > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    return number


def optional_finite(name: str, value: Any, low: float | None = None, high: float | None = None,
                    low_open: bool = False) -> float | None:
    """[`finite`][zerocon.editing.settings_checks.finite], letting ``None`` through."""
    return None if value is None else finite(name, value, low, high, low_open)


def sequence(name: str, value: Any) -> tuple[Any, ...]:
    """A list or tuple as a tuple (a string is refused: it is not a list of words)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise ValueError(f"{name} must be a list or tuple, got {value!r}")
    return tuple(value)


def words(name: str, value: Any) -> tuple[str, ...]:
    """A sequence of non-empty words as a tuple."""
    items = sequence(name, value)
    if not all(isinstance(word, str) and word.strip() for word in items):
        raise ValueError(f"{name} must be a sequence of non-empty words, got {value!r}")
    return items


def integer(name: str, value: Any, low: int, high: float | None = None) -> int:
    """A whole number (an integral float is accepted) within ``[low, high]``.

    Examples:
        >>> integer("steps", 3.0, 1)
        3
    """
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    return int(value)


def optional_integer(name: str, value: Any, low: int, high: float | None = None) -> int | None:
    """[`integer`][zerocon.editing.settings_checks.integer], letting ``None`` through."""
    return None if value is None else integer(name, value, low, high)


def flag(name: str, value: Any) -> bool:
    """``True`` or ``False`` only (no truthy numbers or strings)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """One of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return str(value)


def pattern(name: str, value: Any) -> str:
    """A regular expression string that compiles."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a regular expression string")
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"{name}={value!r} is not a regular expression: {error}") from error
    return value


def optional_text(name: str, value: Any) -> str | None:
    """A string or ``None``."""
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string or None, got {value!r}")
    return value


def json_values(name: str, value: Any) -> dict[str, Any]:
    """A dict of finite JSON values."""
    try:
        if not isinstance(value, dict):
            raise TypeError(f"a dict is needed, got {type(value).__name__}")
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must hold finite JSON values: {error}") from error
    return value
