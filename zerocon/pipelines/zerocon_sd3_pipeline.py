"""``ZeroConSD3Pipeline``: the same editor on Stable Diffusion 3 / 3.5 (MMDiT, flow matching)."""

from __future__ import annotations

from typing import Any, ClassVar

from diffusers import AutoencoderKL, DiffusionPipeline, SD3Transformer2DModel

from zerocon.captioning import Captioner
from zerocon.direction import SD3TextEncoder, SentenceSource
from zerocon.editing import SD3Denoiser
from zerocon.pipelines.transformer_pipeline import ZeroConTransformerPipeline

#: T5 tokens of SD3's conditioning (diffusers' default; zeros when T5 is absent).
MAX_SEQUENCE_LENGTH = 256


class ZeroConSD3Pipeline(ZeroConTransformerPipeline):
    """Zero-shot image-to-image translation on Stable Diffusion 3 / 3.5.

    The components are ``StableDiffusion3Pipeline``'s; the call is
    [`ZeroConPipeline`][zerocon.pipelines.ZeroConPipeline]'s, keyword for keyword. The prompts
    are encoded by an [`SD3TextEncoder`][zerocon.direction.SD3TextEncoder] (every text stream and
    the pooled vector move with the edit direction), the transformer runs behind an
    [`SD3Denoiser`][zerocon.editing.SD3Denoiser], the inversion is the flow-matching Euler
    inversion over the scheduler's own sigmas and the edit samples with the pipeline's
    ``FlowMatchEulerDiscreteScheduler``. What is not available on flow models yet is refused by
    name at call time (the reference from the inversion, the tone anchor, self-attention
    injection, scene re-noising; PatchNCE needs SD3.5's self-attention layers).
    ``ZeroConPipeline.from_pipe`` / ``from_pretrained`` return this class for an SD3 pipeline
    or folder.

    Args:
        transformer: the ``SD3Transformer2DModel``.
        scheduler: a ``FlowMatchEulerDiscreteScheduler``.
        vae: the VAE.
        text_encoder: CLIP-L (with projection).
        tokenizer: its tokenizer.
        text_encoder_2: CLIP-G (with projection).
        tokenizer_2: its tokenizer.
        text_encoder_3: T5, optional (zeros in its place, as diffusers does).
        tokenizer_3: its tokenizer.
        captioner: turns source images into captions (optional when source prompts are given).
        sentence_source: sentences of word directions.

    Shape:
        Images of any size (sides rounded down to the VAE's multiple times the patch size).

    Examples:
        >>> import torch
        >>> from diffusers import StableDiffusion3Pipeline
        >>> from PIL import Image
        >>> from zerocon.testing import tiny_sd3_components
        >>> sd3 = StableDiffusion3Pipeline(**tiny_sd3_components().as_kwargs())
        >>> from zerocon.pipelines import ZeroConPipeline
        >>> pipe = ZeroConPipeline.from_pipe(sd3)
        >>> type(pipe).__name__
        'ZeroConSD3Pipeline'
        >>> out = pipe(Image.new("RGB", (32, 32), "red"), "a blue circle on a white background",
        ...            source_prompt="a red circle on a white background", method="pix2pix-zero",
        ...            num_inference_steps=2, show_progress=False)
        >>> out.images[0].size
        (32, 32)
    """

    model_cpu_offload_seq = "text_encoder->text_encoder_2->text_encoder_3->transformer->vae"
    _optional_components: ClassVar[list[str]] = ["text_encoder_3", "tokenizer_3"]

    def __init__(
        self,
        transformer: SD3Transformer2DModel,
        scheduler: Any,
        vae: AutoencoderKL,
        text_encoder: Any,
        tokenizer: Any,
        text_encoder_2: Any,
        tokenizer_2: Any,
        text_encoder_3: Any = None,
        tokenizer_3: Any = None,
        captioner: Captioner | None = None,
        sentence_source: SentenceSource | None = None,
    ) -> None:
        DiffusionPipeline.__init__(self)
        self.register_modules(transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=text_encoder,
                              tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
                              text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3)
        self._init_editing(captioner, sentence_source)

    @property
    def prompt_encoder(self) -> SD3TextEncoder:
        """An [`SD3TextEncoder`][zerocon.direction.SD3TextEncoder] of the current encoders (cached)."""
        parts = (self.text_encoder, self.tokenizer, self.text_encoder_2, self.tokenizer_2, self.text_encoder_3,
                 self.tokenizer_3)
        return self._cached_encoder(parts, lambda: SD3TextEncoder(
            *parts, joint_attention_dim=int(self.transformer.config.joint_attention_dim),
            max_sequence_length=MAX_SEQUENCE_LENGTH))

    def make_denoiser(self, encoder: Any) -> SD3Denoiser:
        """An [`SD3Denoiser`][zerocon.editing.SD3Denoiser] over the transformer."""
        return SD3Denoiser(self.transformer, encoder.pooled_dim)
