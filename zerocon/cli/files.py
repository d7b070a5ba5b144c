"""File helpers of the command line: input discovery, image loading, atomic writes, names."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from zerocon.cli.errors import CliError
from zerocon.files import (  # noqa: F401  (the command line's names for the shared file helpers)
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_LIMIT,
    ImageTooLarge,
    atomic_write,
    check_image,
    load_image,
    publish_edit,
    save_image,
    save_json,
)
from zerocon.files.writing import jsonable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

def find_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders (not recursive) into a sorted, de-duplicated list of images.

    Args:
        paths: image files or folders holding images.

    Returns:
        Resolved image paths, sorted (the order every process of a multi-process run agrees on).

    Raises:
        CliError: if a path does not exist, is a pipe or device, or nothing is found.

    Examples:
        >>> find_inputs(["/no/such/file.png"])  # doctest: +SKIP
    """
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise CliError(f"input {str(raw)!r} does not exist")
        if path.is_dir():
            found.update(
                p.resolve()
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif not path.is_file():  # a pipe or a device: reading it would block or consume it
            raise CliError(f"input {str(raw)!r} is not a regular file (a pipe, socket or device); save the image first")
        else:
            found.add(path.resolve())
    if not found:
        raise CliError(f"no image found in {[str(p) for p in paths]}")
    return sorted(found)


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and check that files can be written in it.

    Args:
        path: the output folder.

    Returns:
        The resolved folder.

    Raises:
        CliError: if it cannot be created or written.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".zerocon-probe-", delete=True):
            pass
    except OSError as error:
        raise CliError(
            f"cannot write to output folder {str(path)!r}: {error.strerror or error}"
        ) from error
    return path.resolve()


def output_stem(source: Path, method: str, settings: dict[str, Any]) -> str:
    """A unique, stable output name for ``source`` edited with ``settings``.

    ``{input stem}-{method}-{10 hex digits}``; the digits hash the input's absolute path and
    the settings, so the same input and settings always give the same name (resumable runs)
    and different inputs with the same stem never collide.

    Args:
        source: the input file.
        method: the method name.
        settings: everything that changes the result.

    Returns:
        The file stem (no suffix).

    Examples:
        >>> output_stem(Path("/a/cat.png"), "zerocon", {"steps": 5})[:12]
        'cat-zerocon-'
    """
    digest = settings_digest({"input": str(source.resolve()), **settings})
    return f"{source.stem}-{method}-{digest}"


def settings_digest(settings: dict[str, Any]) -> str:
    """10 hex digits hashing ``settings`` (JSON with sorted keys): equal settings, equal digits.

    Args:
        settings: everything that changes a result (JSON-ready values, paths, tensors' items).

    Returns:
        The digest.

    Examples:
        >>> settings_digest({"steps": 5}) == settings_digest({"steps": 5})
        True
        >>> settings_digest({"steps": 5}) == settings_digest({"steps": 6})
        False
    """
    key = json.dumps(jsonable(settings), sort_keys=True)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]


def make_grid(
    rows: Sequence[Sequence[Image.Image]], cell: int | None = None, pad: int = 2
) -> Image.Image:
    """Lay images out in a grid (rows of equal length; each cell resized to ``cell`` px).

    Args:
        rows: the images, row by row.
        cell: the side of each cell (default: the first image's larger side).
        pad: white padding between cells.

    Returns:
        The grid image (RGB).

    Raises:
        ValueError: for no rows or rows of different lengths.

    Examples:
        >>> make_grid([[Image.new("RGB", (4, 4))] * 2]).size
        (10, 4)
    """
    if not rows or not rows[0]:
        raise ValueError("make_grid needs at least one image")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError("make_grid: every row must have the same number of images")
    side = cell or max(rows[0][0].size)
    grid = Image.new(
        "RGB", (width * side + (width - 1) * pad, len(rows) * side + (len(rows) - 1) * pad), "white"
    )
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            tile = image.convert("RGB").resize((side, side), Image.Resampling.NEAREST)
            grid.paste(tile, (c * (side + pad), r * (side + pad)))
    return grid


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, width: int, draw: Any, font: Any) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def labelled_grid(
    rows: Sequence[Sequence[Image.Image]],
    column_labels: Sequence[str],
    row_labels: Sequence[str],
    cell: int = 128,
    label_width: int = 200,
    pad: int = 2,
) -> Image.Image:
    """``make_grid`` with a header row of column labels and a left column of row labels.

    Labels wrap at word boundaries to fit their cell.

    Args:
        rows: the images, row by row.
        column_labels: one label per column (e.g. ``"source"`` and method names).
        row_labels: one label per row (e.g. each row's target prompt).
        cell: the side of each image cell.
        label_width: the width of the row-label column.
        pad: white padding between cells.

    Returns:
        The labelled grid (RGB).

    Raises:
        ValueError: for label counts that do not match the grid.

    Examples:
        >>> grid = labelled_grid([[Image.new("RGB", (8, 8))] * 2], ["source", "edit"], ["a target"], cell=32)
        >>> grid.size[0] > 2 * 32
        True
    """
    from PIL import ImageDraw

    body = make_grid(rows, cell=cell, pad=pad)
    if len(column_labels) != len(rows[0]) or len(row_labels) != len(rows):
        raise ValueError(
            f"labelled_grid: {len(column_labels)} column labels for {len(rows[0])} columns and "
            f"{len(row_labels)} row labels for {len(rows)} rows"
        )
    font = _font(max(10, cell // 9))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = int(probe.textbbox((0, 0), "Ag", font=font)[3]) + 3
    header_lines = max(len(_wrap(label, cell - 4, probe, font)) for label in column_labels)
    header = header_lines * line_height + 6
    grid = Image.new("RGB", (label_width + pad + body.width, header + body.height), "white")
    grid.paste(body, (label_width + pad, header))
    draw = ImageDraw.Draw(grid)
    for c, label in enumerate(column_labels):
        x = label_width + pad + c * (cell + pad)
        for k, line in enumerate(_wrap(label, cell - 4, draw, font)):
            draw.text((x + 2, 3 + k * line_height), line, fill="black", font=font)
    for r, label in enumerate(row_labels):
        y = header + r * (cell + pad)
        for k, line in enumerate(_wrap(label, label_width - 8, draw, font)):
            draw.text((4, y + 4 + k * line_height), line, fill="black", font=font)
    return grid
