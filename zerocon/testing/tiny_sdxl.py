"""Tiny, random Stable Diffusion XL components: two text encoders and a UNet with added conditioning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from zerocon.shapes.word_tokenizer import build_word_tokenizer, special_token_ids
from zerocon.testing.tiny_models import TINY_WORDS, tiny_text_encoder, tiny_vae


def tiny_sdxl_unet(seed: int = 0, sample_size: int = 8) -> UNet2DConditionModel:
    """A tiny SDXL-style UNet (the layout of diffusers' own SDXL tests, smaller).

    Two resolutions; cross-attention in ``down_blocks.1`` (two transformer layers) and
    ``up_blocks.0``; ``cross_attention_dim = 64`` (two 32-wide encoders);
    ``addition_embed_type="text_time"`` with a 32-wide pooled embedding and 8-wide time
    embeddings (``projection_class_embeddings_input_dim = 32 + 6·8``).

    Shape:
        - sample ``(B, 4, H, W)``; encoder_hidden_states ``(B, L, 64)``; added_cond_kwargs
          ``text_embeds`` ``(B, 32)`` and ``time_ids`` ``(B, 6)``.

    Examples:
        >>> tiny_sdxl_unet().config.addition_embed_type
        'text_time'
    """
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        cross_attention_dim=64,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=32 + 6 * 8,
        norm_num_groups=8,
    ).eval()


@dataclass
class TinySDXLComponents:
    """The seven SDXL components, tiny and random (``StableDiffusionXLPipeline``'s arguments).

    Shape:
        - images ``(B, 3, 16, 16)`` ↔ latents ``(B, 4, 8, 8)``.
        - each text encoder: ``(B, 16)`` ids → ``(B, 16, 32)``; the second also pools to ``(B, 32)``.

    Examples:
        >>> c = tiny_sdxl_components()
        >>> c.text_encoder_2.config.projection_dim, c.unet.config.cross_attention_dim
        (32, 64)
    """

    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    text_encoder_2: CLIPTextModelWithProjection
    tokenizer: Any
    tokenizer_2: Any
    unet: UNet2DConditionModel
    scheduler: DDIMScheduler

    def as_kwargs(self) -> dict[str, Any]:
        """The components as keyword arguments of ``StableDiffusionXLPipeline``."""
        return dict(vars(self))


def tiny_sdxl_components(seed: int = 0) -> TinySDXLComponents:
    """All SDXL components, tiny, sharing the word vocabulary of ``tiny_components``.

    Args:
        seed: the seed of the random weights.

    Examples:
        >>> c = tiny_sdxl_components()
        >>> c.unet.config.projection_class_embeddings_input_dim
        80
    """
    tokenizer = build_word_tokenizer(TINY_WORDS, model_max_length=16)
    tokenizer_2 = build_word_tokenizer(TINY_WORDS, model_max_length=16)
    text_encoder = tiny_text_encoder(len(tokenizer), hidden_size=32, max_length=16, seed=seed)
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(tokenizer_2), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=16, projection_dim=32, **special_token_ids(len(tokenizer_2)),
    )).eval()
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                              steps_offset=1)
    return TinySDXLComponents(tiny_vae(seed=seed), text_encoder, text_encoder_2, tokenizer, tokenizer_2,
                              tiny_sdxl_unet(seed=seed), scheduler)
