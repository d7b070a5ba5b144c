"""Decode phase: the edit latents back to pixels, in the requested output type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from zerocon.editing.preprocessing import tensor_to_pil

if TYPE_CHECKING:
    from zerocon.editing.editor import Editor
    from zerocon.editing.state import ImageState


def decode_phase(editor: Editor, states: Sequence[ImageState], output_type: str) -> None:
    """Set each ``state.result``: a PIL image, an ``(H, W, 3)`` float array in ``[0, 1]``, or the latent.

    All latents of the batch go through the decoder in one call. After a local blend with
    ``blend_pixels``, the image's reference latent is decoded too and the image takes the
    reference's pixels outside the (bilinearly upsampled) blend mask: the VAE decoder mixes
    information across the whole image (group norms, mid-block attention), so a latent that
    equals the reference outside the mask still decodes to a slightly different background.
    """
    assert all(state.latents is not None for state in states)
    if output_type == "latent":
        for state in states:
            state.result = state.latents
        return
    blends = [state.pixel_blend for state in states]
    rows = [state.latents for state in states] + [blend.reference for blend in blends if blend is not None]
    latents = torch.cat(rows)  # type: ignore[arg-type]
    decoded = editor.decode(latents)
    extra = len(states)
    for row, (state, blend) in enumerate(zip(states, blends, strict=True)):
        image = decoded[row : row + 1]
        if blend is not None:
            mask = F.interpolate(blend.mask.float(), size=image.shape[-2:], mode="bilinear", align_corners=False)
            mask = mask.to(image.dtype)
            image = mask * image + (1 - mask) * decoded[extra : extra + 1]
            extra += 1
        if output_type == "np":
            state.result = (image / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).float().cpu().numpy()
        else:
            state.result = tensor_to_pil(image)[0]
