"""Encode phase: the source image's VAE latent (encoder mean, shifted and scaled)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zerocon.editing.preprocessing import image_to_tensor

if TYPE_CHECKING:
    from zerocon.editing.editor import Editor
    from zerocon.editing.state import ImageState


def encode_phase(editor: Editor, state: ImageState) -> None:
    """Set ``state.x0`` to ``(mean - shift_factor) · scaling_factor`` in the UNet's dtype."""
    vae = editor.vae
    pixels = image_to_tensor(state.prepared.image).to(device=editor.device, dtype=vae.dtype)
    mean = vae.encode(pixels).latent_dist.mean
    state.x0 = ((mean - editor.vae_shift) * vae.config.scaling_factor).to(editor.unet.dtype)
