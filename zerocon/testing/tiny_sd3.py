"""Tiny Stable Diffusion 3 components, built locally from configs (no hub)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from zerocon.shapes.word_tokenizer import build_word_tokenizer, special_token_ids
from zerocon.testing.tiny_models import TINY_WORDS, tiny_vae


def tiny_sd3_transformer(seed: int = 0, dual_attention: bool = False) -> SD3Transformer2DModel:
    """A two-block ``SD3Transformer2DModel`` on 4-channel latents, 64-wide text rows, 64-wide pooled vector.

    Args:
        seed: the seed of the random weights.
        dual_attention: SD3.5's extra self-attention (``attn2``) and qk-norm in every block.

    Examples:
        >>> tiny_sd3_transformer().config.joint_attention_dim
        64
    """
    torch.manual_seed(seed)
    return SD3Transformer2DModel(
        sample_size=8, patch_size=1, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=64, caption_projection_dim=16, pooled_projection_dim=64, out_channels=4,
        pos_embed_max_size=16, dual_attention_layers=(0, 1) if dual_attention else (),
        qk_norm="rms_norm" if dual_attention else None,
    ).eval()


@dataclass
class TinySD3Components:
    """The parts of a ``StableDiffusion3Pipeline`` (without T5).

    Shape:
        No tensors: models.

    Examples:
        >>> c = tiny_sd3_components()
        >>> type(c.scheduler).__name__
        'FlowMatchEulerDiscreteScheduler'
    """

    vae: AutoencoderKL
    text_encoder: CLIPTextModelWithProjection
    text_encoder_2: CLIPTextModelWithProjection
    tokenizer: Any
    tokenizer_2: Any
    transformer: SD3Transformer2DModel
    scheduler: FlowMatchEulerDiscreteScheduler

    def as_kwargs(self) -> dict[str, Any]:
        """The components as keyword arguments of ``StableDiffusion3Pipeline`` (T5 absent)."""
        return {**vars(self), "text_encoder_3": None, "tokenizer_3": None}


def tiny_sd3_components(seed: int = 0, dual_attention: bool = False) -> TinySD3Components:
    """All SD3 components but T5, tiny, sharing the word vocabulary of ``tiny_components``.

    Examples:
        >>> tiny_sd3_components().text_encoder_2.config.projection_dim
        32
    """
    encoders, tokenizers = [], []
    for offset in (1, 2):
        tokenizer = build_word_tokenizer(TINY_WORDS, model_max_length=16)
        torch.manual_seed(seed + offset)
        encoders.append(CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=16, projection_dim=32, **special_token_ids(len(tokenizer)),
        )).eval())
        tokenizers.append(tokenizer)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    return TinySD3Components(tiny_vae(seed=seed), encoders[0], encoders[1], tokenizers[0], tokenizers[1],
                             tiny_sd3_transformer(seed, dual_attention), scheduler)


def tiny_flux_transformer(seed: int = 0, guidance_embeds: bool = False) -> Any:
    """A one-double, one-single block ``FluxTransformer2DModel`` on 4-channel latents (16 per 2×2 token).

    Examples:
        >>> tiny_flux_transformer().config.in_channels
        16
    """
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    return FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                  attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                  pooled_projection_dim=32, axes_dims_rope=(4, 4, 8),
                                  guidance_embeds=guidance_embeds).eval()


@dataclass
class TinyFluxComponents:
    """The parts of a ``FluxPipeline``: CLIP, a T5 (with a word tokenizer), the transformer.

    Shape:
        No tensors: models.

    Examples:
        >>> type(tiny_flux_components().text_encoder_2).__name__
        'T5EncoderModel'
    """

    vae: AutoencoderKL
    text_encoder: Any
    tokenizer: Any
    text_encoder_2: Any
    tokenizer_2: Any
    transformer: Any
    scheduler: FlowMatchEulerDiscreteScheduler

    def as_kwargs(self) -> dict[str, Any]:
        """The components as keyword arguments of ``FluxPipeline``."""
        return dict(vars(self))


def tiny_flux_components(seed: int = 0, guidance_embeds: bool = False) -> TinyFluxComponents:
    """All FLUX components, tiny, with FLUX's dynamically shifted flow-matching scheduler.

    Examples:
        >>> tiny_flux_components().scheduler.config.use_dynamic_shifting
        True
    """
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = build_word_tokenizer(TINY_WORDS, model_max_length=16)
    tokenizer_2 = build_word_tokenizer(TINY_WORDS, model_max_length=16)
    torch.manual_seed(seed + 1)
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=16, **special_token_ids(len(tokenizer)),
    )).eval()
    torch.manual_seed(seed + 2)
    t5 = T5EncoderModel(T5Config(vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                 num_heads=2)).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=True,
                                                base_shift=0.5, max_shift=1.15, base_image_seq_len=16,
                                                max_image_seq_len=256)
    return TinyFluxComponents(tiny_vae(seed=seed), clip, tokenizer, t5, tokenizer_2,
                              tiny_flux_transformer(seed, guidance_embeds), scheduler)
