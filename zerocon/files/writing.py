"""Writing results so that no reader ever sees half a file: atomic writes, PNG + sidecar pairs."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from zerocon.files.errors import InputError


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write a file through a temporary name in the same folder, then rename it into place.

    An interrupted write leaves no file at ``path`` (at most a hidden ``.tmp`` file). The file
    gets the mode an ordinary ``open(path, "w")`` would give: ``0o666`` less the umask (the
    temporary file is created ``0o600``, and the rename would keep that).

    Args:
        path: the final file.
        write: ``write(temporary_path)`` writes the content.

    Raises:
        OSError: if writing or renaming fails (the temporary file is removed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets a later run remove what a killed run left (see cli.claims).
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish_edit(image: Image.Image, record: Any, png: Path) -> None:
    """Write an edit's PNG and its JSON sidecar so that the sidecar never exists without it.

    Both are written to temporary files first; only when both are complete are they renamed,
    the PNG first. An output counts as done when its sidecar exists, so a run killed between the
    two renames leaves a PNG that the next run redoes.

    Raises:
        InputError: naming the file that could not be written (no temporary file is left).
    """
    sidecar = png.with_suffix(".json")
    text = json.dumps(jsonable(record), indent=2) + "\n"
    temps: list[Path] = []
    try:
        for target, write in ((png, lambda tmp: image.save(tmp, format="PNG")),
                              (sidecar, lambda tmp: tmp.write_text(text, encoding="utf-8"))):
            handle, name = tempfile.mkstemp(dir=png.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp")
            os.close(handle)
            temps.append(Path(name))
            try:
                write(temps[-1])
                os.chmod(temps[-1], 0o666 & ~_current_umask())
            except OSError as error:
                raise InputError(f"cannot write {str(target)!r}: {error.strerror or error}") from error
        os.replace(temps[0], png)
        os.replace(temps[1], sidecar)
    except OSError as error:
        raise InputError(f"cannot publish {str(png)!r}: {error.strerror or error}") from error
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def save_image(image: Image.Image, path: Path) -> None:
    """Save a PNG atomically.

    Args:
        image: the image.
        path: the destination (``.png``).
    """
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def save_json(data: Any, path: Path) -> None:
    """Save JSON atomically (indented, NaN/Inf written as strings).

    Args:
        data: JSON-ready data.
        path: the destination.
    """
    text = json.dumps(jsonable(data), indent=2, sort_keys=False)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def jsonable(value: Any) -> Any:
    """``value`` made JSON-ready: NaN/Inf as strings, paths as text, tensors' items, keys as text.

    Examples:
        >>> jsonable({"a": float("nan"), "b": [Path("x")]})
        {'a': 'nan', 'b': ['x']}
    """
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return jsonable(value.item())
    return value
