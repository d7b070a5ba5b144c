"""Paths that files list (datasets, model folders), confined to the folder that holds them."""

from __future__ import annotations

from pathlib import Path


def inside_folder(folder: str | Path, relative: str | Path) -> bool:
    """Whether ``relative`` names a place inside ``folder``: a relative path without ``..``
    whose resolved location (links followed) stays under the folder's.

    Args:
        folder: the folder the path is relative to.
        relative: the path as a file lists it.

    Examples:
        >>> inside_folder("/models/m", "captions.txt"), inside_folder("/models/m", "a/b.txt")
        (True, True)
        >>> inside_folder("/models/m", "../x"), inside_folder("/models/m", "/etc/passwd")
        (False, False)
    """
    path = Path(relative)
    if not str(relative) or path.is_absolute() or ".." in path.parts or path.drive:
        return False
    root = Path(folder).resolve()
    return (root / path).resolve().is_relative_to(root)
