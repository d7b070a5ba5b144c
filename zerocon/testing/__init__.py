"""Tiny, randomly initialised components for tests and unit-level research.

Everything here is built from configs in code: no download, no weights on disk.
"""

from zerocon.testing.gaussian_denoiser import GaussianDenoiser
from zerocon.testing.tiny_models import (
    TinyComponents,
    build_word_tokenizer,
    tiny_components,
    tiny_text_encoder,
    tiny_unet,
    tiny_vae,
)
from zerocon.testing.tiny_sd3 import (
    TinyFluxComponents,
    TinySD3Components,
    tiny_flux_components,
    tiny_flux_transformer,
    tiny_sd3_components,
    tiny_sd3_transformer,
)
from zerocon.testing.tiny_sdxl import TinySDXLComponents, tiny_sdxl_components, tiny_sdxl_unet

__all__ = [
    "GaussianDenoiser",
    "TinyComponents",
    "TinyFluxComponents",
    "TinySD3Components",
    "TinySDXLComponents",
    "build_word_tokenizer",
    "tiny_components",
    "tiny_flux_components",
    "tiny_flux_transformer",
    "tiny_sd3_components",
    "tiny_sd3_transformer",
    "tiny_sdxl_components",
    "tiny_sdxl_unet",
    "tiny_text_encoder",
    "tiny_unet",
    "tiny_vae",
]
