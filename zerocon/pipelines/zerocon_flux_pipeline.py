"""``ZeroConFluxPipeline``: the same editor on FLUX (MMDiT, flow matching, guidance-distilled)."""

from __future__ import annotations

from typing import Any, ClassVar

from diffusers import AutoencoderKL, DiffusionPipeline, FluxTransformer2DModel

from zerocon.captioning import Captioner
from zerocon.direction import FluxTextEncoder, SentenceSource
from zerocon.editing import FluxDenoiser
from zerocon.pipelines.transformer_pipeline import ZeroConTransformerPipeline

#: T5 tokens of FLUX's conditioning (FluxPipeline's default).
MAX_SEQUENCE_LENGTH = 512


class ZeroConFluxPipeline(ZeroConTransformerPipeline):
    """Zero-shot image-to-image translation on FLUX.1 (dev and schnell).

    The components are ``FluxPipeline``'s; the call is
    [`ZeroConPipeline`][zerocon.pipelines.ZeroConPipeline]'s, with FLUX's two guidance names as
    diffusers' ``FluxPipeline`` has them: ``guidance_scale`` is the distilled guidance embedded in
    FLUX-dev's transformer (default 3.5; schnell has none) and ``true_cfg_scale`` is classifier-free
    guidance with negative rows (default 1: none, one model row per pass). Prompts are encoded by
    a [`FluxTextEncoder`][zerocon.direction.FluxTextEncoder]; word positions come from the T5
    tokenizer; the transformer runs behind a [`FluxDenoiser`][zerocon.editing.FluxDenoiser]
    (2×2 latent patches, the dynamic shift ``mu`` from the image size). Feature terms have no
    tap on FLUX (``zerocon`` with ``lambda_nce > 0`` is refused), and what is not ported to flow
    models is refused by name.

    Args:
        scheduler: a ``FlowMatchEulerDiscreteScheduler``.
        vae: the VAE.
        text_encoder: CLIP (pooled vector).
        tokenizer: its tokenizer.
        text_encoder_2: T5 (tokens).
        tokenizer_2: its tokenizer.
        transformer: the ``FluxTransformer2DModel``.
        captioner: turns source images into captions (optional when source prompts are given).
        sentence_source: sentences of word directions.

    Shape:
        Images of any size whose latent sides are even (sides rounded down to the VAE's multiple).

    Examples:
        >>> import torch
        >>> from diffusers import FluxPipeline
        >>> from PIL import Image
        >>> from zerocon.testing import tiny_flux_components
        >>> from zerocon.pipelines import ZeroConPipeline
        >>> pipe = ZeroConPipeline.from_pipe(FluxPipeline(**tiny_flux_components(guidance_embeds=True).as_kwargs()))
        >>> type(pipe).__name__
        'ZeroConFluxPipeline'
        >>> out = pipe(Image.new("RGB", (32, 32), "red"), "a blue circle on a white background",
        ...            source_prompt="a red circle on a white background", method="pix2pix-zero",
        ...            num_inference_steps=2, show_progress=False)
        >>> out.images[0].size, out.parameters["settings"]["guidance_scale"], out.parameters["embedded_guidance"]
        ((32, 32), 1.0, 3.5)
    """

    model_cpu_offload_seq = "text_encoder->text_encoder_2->transformer->vae"
    _optional_components: ClassVar[list[str]] = []

    def __init__(
        self,
        scheduler: Any,
        vae: AutoencoderKL,
        text_encoder: Any,
        tokenizer: Any,
        text_encoder_2: Any,
        tokenizer_2: Any,
        transformer: FluxTransformer2DModel,
        captioner: Captioner | None = None,
        sentence_source: SentenceSource | None = None,
    ) -> None:
        DiffusionPipeline.__init__(self)
        self.register_modules(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                              text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer)
        self._init_editing(captioner, sentence_source)
        self._embedded_guidance = 3.5

    @property
    def prompt_encoder(self) -> FluxTextEncoder:
        """A [`FluxTextEncoder`][zerocon.direction.FluxTextEncoder] of the current encoders (cached)."""
        parts = (self.text_encoder, self.tokenizer, self.text_encoder_2, self.tokenizer_2)
        return self._cached_encoder(parts, lambda: FluxTextEncoder(*parts, max_sequence_length=MAX_SEQUENCE_LENGTH))

    @property
    def word_tokenizer(self) -> Any:
        """T5's tokenizer: FLUX's joint attention sees T5's tokens."""
        return self.tokenizer_2

    def make_denoiser(self, encoder: Any) -> FluxDenoiser:
        """A [`FluxDenoiser`][zerocon.editing.FluxDenoiser] with the call's embedded guidance."""
        return FluxDenoiser(self.transformer, encoder.pooled_dim, guidance=self._embedded_guidance)

    def __call__(self, *args: Any, guidance_scale: float = 3.5, true_cfg_scale: float = 1.0,  # type: ignore[override]
                 **kwargs: Any) -> Any:
        """[`ZeroConPipeline.__call__`][zerocon.pipelines.ZeroConPipeline.__call__] with FLUX's guidance names.

        Args:
            *args: as ``ZeroConPipeline``'s.
            guidance_scale: FLUX-dev's embedded (distilled) guidance; ignored by schnell.
            true_cfg_scale: classifier-free guidance with negative rows (``1``: none).
            **kwargs: as ``ZeroConPipeline``'s.
        """
        self._embedded_guidance = float(guidance_scale)
        output = super().__call__(*args, guidance_scale=true_cfg_scale, **kwargs)
        if isinstance(output, tuple):
            return output
        output.parameters["embedded_guidance"] = (
            self._embedded_guidance if getattr(self.transformer.config, "guidance_embeds", False) else None)
        return output
