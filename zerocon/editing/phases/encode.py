"""Encode phase: the source images' VAE latents (encoder mean, shifted and scaled)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from zerocon.editing.preprocessing import image_to_tensor

if TYPE_CHECKING:
    from zerocon.editing.editor import Editor
    from zerocon.editing.state import ImageState


def encode_phase(editor: Editor, states: Sequence[ImageState]) -> None:
    """Set each ``state.x0`` to ``(mean - shift_factor) · scaling_factor`` in float32.

    The images (all of one size) go through the encoder in one call. Latents stay in float32
    whatever the models' dtype (see ``float32_latents``).
    """
    vae = editor.vae
    pixels = torch.cat([image_to_tensor(state.prepared.image) for state in states])
    mean = vae.encode(pixels.to(device=editor.device, dtype=vae.dtype)).latent_dist.mean
    latents = (mean.float() - editor.vae_shift) * vae.config.scaling_factor
    for index, state in enumerate(states):
        state.x0 = latents[index : index + 1]
