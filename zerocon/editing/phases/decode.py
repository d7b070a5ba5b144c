"""Decode phase: the edit latent back to pixels, in the requested output type."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zerocon.editing.preprocessing import tensor_to_pil

if TYPE_CHECKING:
    from zerocon.editing.editor import Editor
    from zerocon.editing.state import ImageState


def decode_phase(editor: Editor, state: ImageState, output_type: str) -> None:
    """Set ``state.result``: a PIL image, an ``(H, W, 3)`` float array in ``[0, 1]``, or the latent."""
    latents = state.latents
    assert latents is not None
    if output_type == "latent":
        state.result = latents
        return
    vae = editor.vae
    decoded = vae.decode((latents / vae.config.scaling_factor + editor.vae_shift).to(vae.dtype)).sample
    if output_type == "np":
        state.result = (decoded / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).float().cpu().numpy()
    else:
        state.result = tensor_to_pil(decoded)[0]
