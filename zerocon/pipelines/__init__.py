"""The zeroCon editor as a diffusers pipeline, composed from zerocon's components.

- :class:`ZeroConPipeline` — caption → DDIM inversion → direction → reference + guided edit.
- :class:`ZeroConPipelineOutput` — images plus every parameter, timings and UNet counts.
- :class:`MethodPreset`, :data:`METHODS`, :func:`get_preset` — ``zerocon``,
  ``pix2pix-zero``, ``ddim``, ``sdedit``.
- :func:`derive_edit_words`, :func:`swap_words` — the automatic direction's words.
- :func:`prepare_image`, :func:`to_rgb`, :func:`vae_scale_factor` — input preprocessing.
- :class:`ShapesWorldSentences` — the embedded model's sentence banks.
"""

from zerocon.pipelines.accounting import PhaseTimer, UNetEvalCounter
from zerocon.pipelines.output import ZeroConPipelineOutput
from zerocon.pipelines.preprocessing import (
    PreparedImage,
    image_to_tensor,
    prepare_image,
    tensor_to_pil,
    to_rgb,
    vae_scale_factor,
)
from zerocon.pipelines.presets import METHODS, MethodPreset, get_preset
from zerocon.pipelines.sentence_sources import ShapesWorldSentences
from zerocon.pipelines.words import derive_edit_words, swap_words
from zerocon.pipelines.zerocon_pipeline import ZeroConPipeline, shapes_world_captioner

__all__ = [
    "METHODS",
    "MethodPreset",
    "PhaseTimer",
    "PreparedImage",
    "ShapesWorldSentences",
    "UNetEvalCounter",
    "ZeroConPipeline",
    "ZeroConPipelineOutput",
    "derive_edit_words",
    "get_preset",
    "image_to_tensor",
    "prepare_image",
    "shapes_world_captioner",
    "swap_words",
    "tensor_to_pil",
    "to_rgb",
    "vae_scale_factor",
]
