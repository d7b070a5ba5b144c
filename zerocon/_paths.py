"""Paths that files list (datasets, model folders), confined to the folder that holds them."""

from __future__ import annotations

from pathlib import Path


def inside_folder(folder: str | Path, relative: str | Path) -> bool:
    """Whether ``relative`` names a place inside ``folder``: a relative path without ``..``
    whose resolved location (links followed) stays under the folder's, or, for a folder inside a
    Hugging Face cache snapshot, in that repository's ``blobs/`` (where the cache links its files).

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
    target = (root / path).resolve()
    if target.is_relative_to(root):
        return True
    # A Hugging Face cache snapshot (``…/models--org--name/snapshots/<revision>/``) links each of
    # its files to ``../../blobs/<hash>`` of the same repository folder: those links stay inside.
    for parent in (root, *root.parents):
        if parent.name == "snapshots":
            return target.is_relative_to(parent.parent / "blobs")
    return False
