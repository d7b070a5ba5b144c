"""The registry of methods by name: what settings and the command line look names up in.

It holds method objects but imports none of their code, so ``settings`` can read presets from
it while ``methods`` (which builds on ``settings``) fills it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zerocon.editing.methods import EditMethod

#: The method the pipeline, ``zerocon edit`` and ``zerocon demo`` use unless told otherwise.
DEFAULT_METHOD = "zerocon++"

#: Registered methods by [`registry_key`][zerocon.editing.method_registry.registry_key].
REGISTRY: dict[str, EditMethod] = {}


def registry_key(name: str) -> str:
    """The spelling a name is registered under: lower case, ``-`` for ``_``.

    Examples:
        >>> registry_key("Pix2Pix_Zero"), registry_key("pix2pixzero")
        ('pix2pix-zero', 'pix2pix-zero')
    """
    key = str(name).strip().lower().replace("_", "-")
    return "pix2pix-zero" if key == "pix2pixzero" else key


def lookup(name: str) -> EditMethod:
    """The method registered under ``name``.

    Raises:
        ValueError: for an unknown name.

    Examples:
        >>> import zerocon.editing
        >>> lookup("zerocon").name
        'zerocon'
    """
    key = registry_key(name)
    if key not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {available_methods()}")
    return REGISTRY[key]


def is_registered(name: str) -> bool:
    """Whether a method is registered under ``name`` (spelling as [`get_method`][zerocon.editing.get_method] reads it).

    Examples:
        >>> import zerocon.editing
        >>> is_registered("pix2pix_zero"), is_registered("bogus")
        (True, False)
    """
    return registry_key(name) in REGISTRY


def available_methods() -> list[str]:
    """The registered method names, sorted.

    Examples:
        >>> import zerocon.editing
        >>> {"zerocon", "pix2pix-zero", "ddim", "sdedit"} <= set(available_methods())
        True
    """
    return sorted(REGISTRY)
