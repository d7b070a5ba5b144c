"""Decode phase: the edit latent back to pixels, in the requested output type."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from zerocon.editing.preprocessing import tensor_to_pil

if TYPE_CHECKING:
    from zerocon.editing.editor import Editor
    from zerocon.editing.state import ImageState


def decode_phase(editor: Editor, state: ImageState, output_type: str) -> None:
    """Set ``state.result``: a PIL image, an ``(H, W, 3)`` float array in ``[0, 1]``, or the latent.

    After a local blend with ``blend_pixels``, the reference latent is decoded too and the image
    takes the reference's pixels outside the (bilinearly upsampled) blend mask: the VAE decoder
    mixes information across the whole image (group norms, mid-block attention), so a latent
    that equals the reference outside the mask still decodes to a slightly different background.
    """
    latents = state.latents
    assert latents is not None
    if output_type == "latent":
        state.result = latents
        return
    vae = editor.vae
    pixel_blend = state.extras.pop("pixel_blend", None)
    both = latents if pixel_blend is None else torch.cat([latents, pixel_blend[1]])
    decoded = vae.decode((both / vae.config.scaling_factor + editor.vae_shift).to(vae.dtype)).sample
    if pixel_blend is not None:
        mask = F.interpolate(pixel_blend[0].float(), size=decoded.shape[-2:], mode="bilinear", align_corners=False)
        mask = mask.to(decoded.dtype)
        decoded = mask * decoded[:1] + (1 - mask) * decoded[1:]
    if output_type == "np":
        state.result = (decoded / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).float().cpu().numpy()
    else:
        state.result = tensor_to_pil(decoded)[0]
