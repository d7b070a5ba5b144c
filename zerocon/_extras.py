"""Optional parts of zerocon and the install extras that bring what they need."""

from __future__ import annotations

import importlib


def require_extra(module: str, extra: str, what: str) -> None:
    """Import ``module`` or raise one ``ImportError`` that names the extra to install.

    Args:
        module: the third-party module the part needs (``"torchmetrics"``).
        extra: the ``zerocon`` extra that installs it (``"metrics"``).
        what: the part, as the user meets it (``"zerocon.metrics"``).

    Raises:
        ImportError: ``"{what} needs the '{extra}' extra: pip install 'zerocon[{extra}]'"``.

    Examples:
        >>> require_extra("math", "none", "this example")
    """
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{what} needs the '{extra}' extra ({module} is not installed): pip install 'zerocon[{extra}]'"
        ) from error
