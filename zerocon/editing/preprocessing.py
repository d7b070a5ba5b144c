"""Image preprocessing for the editor: any PIL mode to RGB, sizes to the VAE's multiple."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor


def vae_scale_factor(vae: object) -> int:
    """The spatial down-sampling factor of a diffusers ``AutoencoderKL``.

    Args:
        vae: the VAE (its ``config.block_out_channels`` is read).

    Returns:
        ``2 ** (len(vae.config.block_out_channels) - 1)`` (8 for Stable Diffusion).

    Raises:
        ValueError: if the VAE has no ``config.block_out_channels``.

    Examples:
        >>> from zerocon.testing import tiny_vae
        >>> vae_scale_factor(tiny_vae())
        2
    """
    channels = getattr(getattr(vae, "config", None), "block_out_channels", None)
    if not channels:
        raise ValueError(
            "the VAE has no config.block_out_channels; is it a diffusers AutoencoderKL?"
        )
    return int(2 ** (len(channels) - 1))


@dataclass(frozen=True)
class PreparedImage:
    """An input image made ready for the VAE.

    Attributes:
        image: the RGB image at its working size.
        original_size: ``(width, height)`` of the input.
        original_mode: the input's PIL mode (``"RGBA"``, ``"L"``, ``"P"``, ...).
        notices: what was changed (mode conversion, resize), one sentence each.
    """

    image: Image.Image
    original_size: tuple[int, int]
    original_mode: str
    notices: tuple[str, ...] = ()

    @property
    def resized(self) -> bool:
        """Whether the working size differs from the input size."""
        return self.image.size != self.original_size


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any PIL image to RGB; transparent pixels are composited onto ``background``.

    Args:
        image: a PIL image of any mode (``RGB``, ``RGBA``, ``LA``, ``L``, ``P``, ``I;16``...).
        background: the colour behind transparent pixels.

    Returns:
        An RGB image of the same size.

    Raises:
        ValueError: if ``image`` is not a PIL image, or a wide image (16-bit, 32-bit integer or
            float) whose values lie outside its type's range (see ``wide_pixel_range``).

    Examples:
        >>> to_rgb(Image.new("L", (4, 4), 128)).mode
        'RGB'
    """
    if not isinstance(image, Image.Image):
        raise ValueError(f"expected a PIL image, got {type(image).__name__}")
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return _wide_to_rgb(image)
    return image.convert("RGB")


def wide_pixel_range(mode: str) -> float:
    """The value that means full white in a wide (more than 8-bit) grey image of PIL ``mode``.

    Wide images are scaled by their type's range, never by their own minimum and maximum: an
    all-white 16-bit image stays white and a dim one stays dim.

    - ``I;16`` (16-bit PNG and TIFF) and ``I`` (32-bit integers, as older Pillow opens 16-bit
      PNGs): 65535, and values must lie in ``[0, 65535]``;
    - ``F`` (32-bit float): 1.0, and values must lie in ``[0, 1]``.

    Args:
        mode: ``"I;16"``, ``"I;16B"``, ``"I;16L"``, ``"I"`` or ``"F"``.

    Raises:
        ValueError: for another mode.

    Examples:
        >>> wide_pixel_range("I;16"), wide_pixel_range("F")
        (65535.0, 1.0)
    """
    if mode in ("I", "I;16", "I;16B", "I;16L"):
        return 65535.0
    if mode == "F":
        return 1.0
    raise ValueError(f"{mode!r} is not a wide grey mode")


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    array = np.asarray(image, dtype=np.float64)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(f"the image has {bad} NaN or infinite pixel value(s); it cannot be edited")
    top = wide_pixel_range(image.mode)
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > top:
        kind = "float" if image.mode == "F" else "integer"
        raise ValueError(
            f"the {kind} image's values span [{low:g}, {high:g}], outside its type's range [0, {top:g}]; "
            "save it as 8- or 16-bit, or scale it to that range"
        )
    scaled = array / top * 255.0
    return Image.fromarray(scaled.round().astype(np.uint8), mode="L").convert("RGB")


def prepare_image(image: Image.Image, multiple: int) -> PreparedImage:
    """Convert to RGB and round each side down to a multiple of ``multiple`` (at least one).

    Args:
        image: a PIL image of any mode.
        multiple: the VAE's scale factor (see [`vae_scale_factor`][zerocon.pipelines.vae_scale_factor]).

    Returns:
        The prepared image, with a notice for each change.

    Raises:
        ValueError: for a non-PIL input, an empty image or ``multiple < 1``.

    Examples:
        >>> prepared = prepare_image(Image.new("RGBA", (30, 17)), 8)
        >>> prepared.image.size, prepared.image.mode
        ((24, 16), 'RGB')
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if not isinstance(image, Image.Image):
        raise ValueError(f"expected a PIL image, got {type(image).__name__}")
    width, height = image.size
    if width < 1 or height < 1:
        raise ValueError(f"the image is empty ({width}x{height})")
    notices: list[str] = []
    rgb = to_rgb(image)
    if image.mode != "RGB":
        notices.append(f"converted {image.mode} image to RGB")
    new_w = max(multiple, (width // multiple) * multiple)
    new_h = max(multiple, (height // multiple) * multiple)
    if (new_w, new_h) != (width, height):
        rgb = rgb.resize((new_w, new_h), Image.Resampling.LANCZOS)
        notices.append(
            f"resized {width}x{height} to {new_w}x{new_h} (sides must be multiples of the "
            f"VAE factor {multiple})"
        )
    return PreparedImage(rgb, (width, height), image.mode, tuple(notices))


def image_to_tensor(image: Image.Image) -> Float[Tensor, "1 3 h w"]:
    """An RGB PIL image as a float tensor in ``[-1, 1]``.

    Args:
        image: an RGB image.

    Shape:
        Output: ``(1, 3, H, W)``.

    Returns:
        The tensor (float32, CPU).

    Examples:
        >>> image_to_tensor(Image.new("RGB", (4, 2), (255, 0, 0))).shape
        torch.Size([1, 3, 2, 4])
    """
    array = np.asarray(to_rgb(image), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(images: Float[Tensor, "b 3 h w"]) -> list[Image.Image]:
    """Float images in ``[-1, 1]`` to RGB PIL images.

    Args:
        images: decoded images.

    Shape:
        images: ``(B, 3, H, W)``.

    Returns:
        ``B`` RGB images.

    Examples:
        >>> tensor_to_pil(torch.zeros(1, 3, 2, 2))[0].getpixel((0, 0))
        (128, 128, 128)
    """
    array = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a, mode="RGB") for a in array.permute(0, 2, 3, 1).cpu().numpy()]
