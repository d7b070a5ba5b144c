"""The zeroCon editor as a diffusers pipeline: a façade over [`editing`][zerocon.editing].

- [`ZeroConPipeline`][zerocon.pipelines.ZeroConPipeline] — ``from_pretrained`` / ``from_pipe`` / ``__call__``.
- [`ZeroConSD3Pipeline`][zerocon.pipelines.ZeroConSD3Pipeline] — the same on Stable Diffusion 3 / 3.5 (what
  ``ZeroConPipeline.from_pipe`` / ``from_pretrained`` return for an SD3 pipeline or folder);
  [`ZeroConFluxPipeline`][zerocon.pipelines.ZeroConFluxPipeline] the same on FLUX.
- [`UnsupportedPipelineError`][zerocon.pipelines.UnsupportedPipelineError] — raised at load time for pipelines zerocon cannot edit with.
- [`ZeroConPipelineOutput`][zerocon.editing.ZeroConPipelineOutput] — images plus every parameter, timings and UNet counts.
- Re-exported from [`editing`][zerocon.editing] for convenience: [`EditSettings`][zerocon.editing.EditSettings],
  [`get_method`][zerocon.editing.get_method], [`available_methods`][zerocon.editing.available_methods], [`derive_edit_words`][zerocon.pipelines.derive_edit_words],
  [`swap_words`][zerocon.pipelines.swap_words], [`prepare_image`][zerocon.pipelines.prepare_image], [`to_rgb`][zerocon.pipelines.to_rgb], [`vae_scale_factor`][zerocon.pipelines.vae_scale_factor],
  [`PhaseTimer`][zerocon.pipelines.PhaseTimer], [`UNetEvalCounter`][zerocon.pipelines.UNetEvalCounter].
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
from zerocon.pipelines.supported_models import UnsupportedPipelineError
from zerocon.pipelines.zerocon_flux_pipeline import ZeroConFluxPipeline
from zerocon.pipelines.zerocon_pipeline import ZeroConPipeline
from zerocon.pipelines.zerocon_sd3_pipeline import ZeroConSD3Pipeline

__all__ = [
    "EditSettings",
    "PhaseTimer",
    "PreparedImage",
    "UNetEvalCounter",
    "UnsupportedPipelineError",
    "ZeroConFluxPipeline",
    "ZeroConPipeline",
    "ZeroConPipelineOutput",
    "ZeroConSD3Pipeline",
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
