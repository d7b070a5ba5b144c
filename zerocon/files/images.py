"""Reading images the way every zerocon front end does: size checked from the header before any
pixel is decoded, EXIF orientation applied, the first frame of an animation, one-line errors."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from zerocon.files.errors import InputError
from zerocon.files.limits import DEFAULT_MAX_PIXELS


class ImageTooLarge(InputError):
    """An input has more pixels than allowed (a per-image problem; the batch goes on)."""


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
        InputError: if the file is unreadable, not an image, or corrupt.
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
        InputError: if the file is unreadable, not an image, or corrupt.
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
        raise InputError(f"cannot read image {str(path)!r}: {reason}") from error
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _rotated(image: Image.Image) -> bool:
    """Whether the EXIF orientation asks for a flip or turn (values 2 to 8; others mean none)."""
    return image.getexif().get(0x0112, 1) in range(2, 9)
