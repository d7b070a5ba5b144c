"""Guards that stop an edit whose numbers have blown up, naming the setting that did it."""

from __future__ import annotations

from torch import Tensor

#: Largest magnitude a latent may reach. VAE-scaled latents of images and the noise they are
#: inverted to stay within a few units; 1,000 is far outside anything a working edit produces.
LATENT_LIMIT = 1e3

#: Largest magnitude of a conditioning embedding (CLIP's hidden states stay within tens).
EMBEDDING_LIMIT = 1e4


class EditOutOfRange(ValueError):
    """An edit's latent (or conditioning) became non-finite or left the sane range.

    A ``ValueError``, so command-line runs record it as the image's failure. The message names
    the image and the setting that most likely caused it.
    """


def _bad_rows(values: Tensor, limit: float) -> list[int]:
    flat = values.detach().flatten(1).float()
    finite = flat.isfinite().all(dim=1)
    small = flat.nan_to_num(0.0, posinf=0.0, neginf=0.0).abs().amax(dim=1) <= limit
    return [int(row) for row in (~(finite & small)).nonzero().flatten()]


def check_in_range(values: Tensor, limit: float, what: str, cause: str, images: list[int]) -> None:
    """Raise ``EditOutOfRange`` if any row of ``values`` is non-finite or exceeds ``limit``.

    Args:
        values: one row per image.
        limit: the largest allowed magnitude.
        what: what ``values`` is (``"the latent after the guidance move"``).
        cause: the settings to blame, as the user knows them.
        images: the image index of each row.

    Raises:
        EditOutOfRange: naming the first bad image, ``what`` and ``cause``.

    Examples:
        >>> import torch
        >>> check_in_range(torch.ones(2, 3), 10.0, "the latent", "guidance_scale", [0, 1])
        >>> check_in_range(torch.tensor([[1.0], [float("nan")]]), 10.0, "the latent", "guidance_scale=1e308", [0, 1])
        Traceback (most recent call last):
        ...
        zerocon.editing.latent_checks.EditOutOfRange: image 1: the latent became non-finite or larger than 10 (guidance_scale=1e308 is too large for this model); no image is written for it
    """
    bad = _bad_rows(values, limit)
    if bad:
        raise EditOutOfRange(
            f"image {images[bad[0]]}: {what} became non-finite or larger than {limit:g} "
            f"({cause} is too large for this model); no image is written for it"
        )
