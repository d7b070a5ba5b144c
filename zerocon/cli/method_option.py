"""``--method``: a registered method, a ``module:Class`` to import, or one a package registers."""

from __future__ import annotations

import argparse
import importlib
from importlib.metadata import entry_points

from zerocon.editing import EditMethod, available_methods, get_method, register_method
from zerocon.editing.methods import is_registered

#: The entry-point group through which installed packages add methods to the command line.
ENTRY_POINT_GROUP = "zerocon.methods"


def load_plugin_methods() -> list[str]:
    """Register the methods that installed packages declare under ``zerocon.methods``.

    A package declares ``[project.entry-points."zerocon.methods"] mine = "pkg.module:MyMethod"``;
    its method then reaches ``zerocon edit --method`` and ``zerocon demo --methods``. A broken
    entry point is skipped (it must not break the command for everything else).

    Returns:
        The names registered.
    """
    names = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            method = point.load()
            instance = method() if isinstance(method, type) else method
            if not is_registered(instance.name):
                register_method(instance)
            names.append(instance.name)
        except Exception:
            continue
    return names


def method_choice(text: str) -> str:
    """An ``argparse`` type: a registered method name, or ``package.module:Class`` (imported and registered).

    Examples:
        >>> method_choice("zerocon")
        'zerocon'
    """
    if ":" in text:
        module_name, _, attribute = text.partition(":")
        try:
            module = importlib.import_module(module_name)
            method = getattr(module, attribute)
        except Exception as error:  # the user's module may raise anything while it is imported
            raise argparse.ArgumentTypeError(
                f"cannot import the method {text!r}: {type(error).__name__}: {_first_line(error)}") from None
        try:
            instance = method() if isinstance(method, type) else method
        except Exception as error:  # ... or while its class is constructed
            raise argparse.ArgumentTypeError(
                f"cannot create the method {text!r}: {type(error).__name__}: {_first_line(error)}") from None
        if not isinstance(instance, EditMethod):
            raise argparse.ArgumentTypeError(f"{text!r} is not an EditMethod (a subclass or an instance)")
        try:
            register_method(instance, replace=True)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"the method {text!r} is not valid: {error}") from None
        return instance.name
    if not is_registered(text):
        raise argparse.ArgumentTypeError(
            f"unknown method {text!r}; choose one of {available_methods()} or give package.module:Class"
        )
    return get_method(text).name  # the registered spelling, as files and sidecars name it


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else "(no message)"
