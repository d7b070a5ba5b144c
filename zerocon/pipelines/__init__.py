"""The zeroCon editor as a diffusers pipeline: a façade over :mod:`zerocon.editing`.

- :class:`ZeroConPipeline` — ``from_pretrained`` / ``from_pipe`` / ``__call__``.
- :class:`ZeroConPipelineOutput` — images plus every parameter, timings and UNet counts.
- Re-exported from :mod:`zerocon.editing` for convenience: :class:`EditSettings`,
  :func:`get_method`, :func:`available_methods`, :func:`derive_edit_words`,
  :func:`swap_words`, :func:`prepare_image`, :func:`to_rgb`, :func:`vae_scale_factor`,
  :class:`PhaseTimer`, :class:`UNetEvalCounter`.
"""

from zerocon.editing import EditSettings, ZeroConPipelineOutput, available_methods, get_method
from zerocon.editing.accounting import PhaseTimer, UNetEvalCounter
from zerocon.editing.preprocessing import (
    PreparedImage,
    image_to_tensor,
    prepare_image,
    tensor_to_pil,
    to_rgb,
    vae_scale_factor,
)
from zerocon.editing.words import derive_edit_words, swap_words
from zerocon.pipelines.zerocon_pipeline import ZeroConPipeline

__all__ = [
    "EditSettings",
    "PhaseTimer",
    "PreparedImage",
    "UNetEvalCounter",
    "ZeroConPipeline",
    "ZeroConPipelineOutput",
    "available_methods",
    "derive_edit_words",
    "get_method",
    "image_to_tensor",
    "prepare_image",
    "swap_words",
    "tensor_to_pil",
    "to_rgb",
    "vae_scale_factor",
]
