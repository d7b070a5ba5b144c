"""File helpers of the command line: input discovery, image loading, atomic writes, names."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from zerocon.cli.errors import CliError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: Default largest input, in pixels (2048 × 2048); ``--max-pixels`` raises it. Larger images are
#: refused from their header, before any pixel is decoded.
DEFAULT_MAX_PIXELS = 2048 * 2048
#: The largest ``--max-pixels``: 64 megapixels, 8192² (an image of that size already needs
#: gigabytes at every step; past it decoding alone can exhaust a machine's memory).
MAX_PIXELS_LIMIT = 8192 * 8192


class ImageTooLarge(CliError):
    """An input has more pixels than allowed (a per-image problem; the batch goes on)."""


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


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, list[str]]:
    """Open and fully decode an image, upright, with notices of what was done to it.

    The size is checked from the header before decoding; EXIF orientation is applied; of an
    animated image the first frame is taken (with a notice).

    Args:
        path: the file.
        max_pixels: the largest accepted ``width · height``.

    Returns:
        The decoded PIL image (any mode; the pipeline converts it) and the notices.

    Raises:
        ImageTooLarge: if the image has more than ``max_pixels`` pixels.
        CliError: if the file is unreadable, not an image, or corrupt.
    """
    result = _decode(path, keep=True, max_pixels=max_pixels)
    assert result is not None
    return result


def check_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Check that an image decodes completely, without keeping it.

    The size is checked from the header first (so a decompression bomb is never decoded); the
    pixels are then decoded (``Image.verify`` alone misses truncated data in several formats)
    and dropped at once, so checking many files holds at most one decoded image in memory.

    Args:
        path: the file.
        max_pixels: the largest accepted ``width · height``.

    Raises:
        ImageTooLarge: if the image has more than ``max_pixels`` pixels.
        CliError: if the file is unreadable, not an image, or corrupt.
    """
    _decode(path, keep=False, max_pixels=max_pixels)


def _decode(path: Path, keep: bool, max_pixels: int) -> tuple[Image.Image, list[str]] | None:
    """Decode every pixel of ``path``; return an upright copy and notices only if ``keep``."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our own limit below, checked before decoding
    try:
        with Image.open(path) as handle:
            width, height = handle.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"{path.name}: {width}x{height} = {width * height:,} pixels is more than "
                    f"--max-pixels {max_pixels:,}; raise it to edit this image"
                )
            handle.load()
            if not keep:
                return None
            notices = []
            frames = getattr(handle, "n_frames", 1)
            if frames > 1:
                notices.append(f"animated image with {frames} frames: the first frame is edited")
            if _rotated(handle):
                notices.append("EXIF orientation applied")
            upright = ImageOps.exif_transpose(handle)
            return (upright if upright is not None else handle).copy(), notices
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        reason = str(error).split("\n")[0] or type(error).__name__
        raise CliError(f"cannot read image {str(path)!r}: {reason}") from error
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _rotated(image: Image.Image) -> bool:
    """Whether the EXIF orientation asks for a flip or turn (values 2 to 8; others mean none)."""
    return image.getexif().get(0x0112, 1) in range(2, 9)


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
        CliError: naming the file that could not be written (no temporary file is left).
    """
    sidecar = png.with_suffix(".json")
    text = json.dumps(_jsonable(record), indent=2) + "\n"
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
                raise CliError(f"cannot write {str(target)!r}: {error.strerror or error}") from error
        os.replace(temps[0], png)
        os.replace(temps[1], sidecar)
    except OSError as error:
        raise CliError(f"cannot publish {str(png)!r}: {error.strerror or error}") from error
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
    text = json.dumps(_jsonable(data), indent=2, sort_keys=False)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return _jsonable(value.item())
    return value


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
    key = json.dumps(_jsonable(settings), sort_keys=True)
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
