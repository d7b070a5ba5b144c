"""``ImageState``: what the phases of one image's edit hand to each other and to callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jaxtyping import Float, Shaped
from torch import Tensor

from zerocon.direction import EditDirection
from zerocon.editing.accounting import PhaseTimer, UNetEvalCounter
from zerocon.editing.edit_scope import EditScope
from zerocon.editing.preprocessing import PreparedImage


@dataclass
class EditRequest:
    """What the user asked for, for one image.

    Shape:
        No tensors.

    Examples:
        >>> EditRequest(target_prompt="a blue circle").word_pairs is None
        True
    """

    target_prompt: str | None = None
    source_prompt: str | None = None
    word_pairs: list[tuple[str, str]] | None = None
    direction: EditDirection | None = None


@dataclass(frozen=True)
class PixelBlend:
    """What the decode phase needs to keep the reference's pixels outside a blend mask.

    Attributes:
        mask: the blend mask (1 where the edit is kept), ``(1, 1, h, w)`` in latent pixels.
        reference: the reference latent after the last step, ``(1, C, h, w)``.

    Shape:
        mask: ``(1, 1, h, w)``; reference: ``(1, C, h, w)``.

    Examples:
        >>> import torch
        >>> blend = PixelBlend(torch.ones(1, 1, 4, 4), torch.zeros(1, 4, 4, 4))
        >>> blend.mask.shape[-2:] == blend.reference.shape[-2:]
        True
    """

    mask: Float[Tensor, "1 1 h w"]
    reference: Float[Tensor, "1 c h w"]


@dataclass
class ImageState:
    """The state of one image's edit, filled in phase by phase.

    Attributes:
        index: the image's position in the call.
        prepared: the RGB image (resized to the VAE's multiple) and preprocessing notices.
        request: what was asked for this image.
        caption: the source caption (given or from the captioner).
        target_prompt: the target prompt (given, or the caption with the words swapped).
        pairs: the ``(source, target)`` word pairs of the direction.
        scope: what the edit changes (object or scene), read from its words when the settings
            ask for ``blend_scope="auto"``; else ``None``.
        direction: the edit direction Δc (``None`` when the target prompt is encoded directly).
        cond / target_cond / uncond: caption, edit and unconditional embeddings ``(1, L, D)``.
        x0: the VAE latent of the source ``(1, C, h, w)``; ``x_start``: the latent the edit
            starts from (inversion ``x_T`` or SDEdit's noised latent).
        timesteps: the edit pass's timesteps.
        latents: the current edit latent.
        losses / skipped: per-step guidance losses and skipped step indices.
        vetoed: the step indices whose guidance move a callback vetoed (factor 0).
        notices: what preprocessing and the phases decided or changed.
        pixel_blend: the local blend's mask and reference latent for the decode phase
            (``None``: the decoded edit is kept as it is).
        result: the decoded image (PIL, array or latent).
        timer / counter: seconds and UNet evaluations of the batch this image was edited in
            (shared by its ``batch_size`` images; [`timings`][zerocon.editing.ImageState.timings] and [`unet_evals`][zerocon.editing.ImageState.unet_evals] give
            this image's share).
        batch_size: how many images were edited together with this one (itself included).

    Shape:
        - cond, target_cond, uncond: ``(1, L, D)``.
        - x0, x_start, latents: ``(1, C, H/f, W/f)``.

    Examples:
        >>> from PIL import Image
        >>> from zerocon.editing.preprocessing import prepare_image
        >>> state = ImageState(0, prepare_image(Image.new("RGB", (64, 64)), 8), EditRequest())
        >>> state.caption is None, state.notices
        (True, [])
    """

    index: int
    prepared: PreparedImage
    request: EditRequest
    caption: str | None = None
    target_prompt: str | None = None
    pairs: list[tuple[str, str]] = field(default_factory=list)
    scope: EditScope | None = None
    direction: EditDirection | None = None
    cond: Float[Tensor, "1 l d"] | None = None
    target_cond: Float[Tensor, "1 l d"] | None = None
    uncond: Float[Tensor, "1 l d"] | None = None
    x0: Float[Tensor, "1 c h w"] | None = None
    x_start: Float[Tensor, "1 c h w"] | None = None
    timesteps: Shaped[Tensor, " s"] | None = None
    latents: Float[Tensor, "1 c h w"] | None = None
    losses: list[dict[str, float]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    vetoed: list[int] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    timer: PhaseTimer = field(default_factory=PhaseTimer)
    counter: UNetEvalCounter | None = None
    pixel_blend: PixelBlend | None = None
    result: Any = None
    batch_size: int = 1

    def timings(self) -> dict[str, float]:
        """Seconds per phase for this image: its batch's times over the batch's size."""
        return {name: seconds / self.batch_size for name, seconds in self.timer.as_dict().items()}

    def unet_evals(self) -> dict[str, int]:
        """UNet evaluations per phase for this image: its batch's rows over the batch's size."""
        if self.counter is None:
            return {}
        return {name: count // self.batch_size for name, count in self.counter.as_dict().items()}
