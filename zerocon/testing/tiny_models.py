"""Builders for tiny diffusers / transformers components (random weights, CPU friendly)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from zerocon.shapes.word_tokenizer import build_word_tokenizer, special_token_ids


def tiny_text_encoder(vocab_size: int, hidden_size: int = 32, max_length: int = 16, seed: int = 0) -> CLIPTextModel:
    """A 2-layer CLIP text encoder with random weights; output ``(b, max_length, hidden_size)``.

    Args:
        vocab_size: the tokenizer's ``len(tokenizer)``; its last two ids are BOS and EOS/pad.
        hidden_size: ``D``.
        max_length: ``L``, the longest input (match the tokenizer's ``model_max_length``).
        seed: the ``torch.manual_seed`` of the random weights.

    Shape:
        - input_ids: ``(B, T)`` with ``T ≤ max_length``.
        - ``last_hidden_state``: ``(B, T, hidden_size)``.

    Examples:
        >>> tok = build_word_tokenizer(["red", "circle"], model_max_length=16)
        >>> encoder = tiny_text_encoder(len(tok), hidden_size=32, max_length=16)
        >>> ids = tok(["a red circle"], padding="max_length", return_tensors="pt").input_ids
        >>> encoder(ids).last_hidden_state.shape
        torch.Size([1, 16, 32])
    """
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=max_length,
        **special_token_ids(vocab_size),
    )
    torch.manual_seed(seed)
    return CLIPTextModel(config).eval()


def tiny_unet(cross_attention_dim: int = 32, sample_size: int = 8, seed: int = 0) -> UNet2DConditionModel:
    """A tiny SD-style UNet: 2 resolutions, cross-attention down and up, 4 latent channels.

    Processor names look like ``down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor``.

    Shape:
        - sample: ``(B, 4, H, W)`` with ``H, W`` divisible by 2 (``sample_size`` is 8 by default);
          encoder_hidden_states: ``(B, L, cross_attention_dim)``.
        - ``.sample``: ``(B, 4, H, W)``.

    Examples:
        >>> unet = tiny_unet()
        >>> with torch.no_grad():
        ...     out = unet(torch.randn(2, 4, 8, 8), 10, torch.randn(2, 16, 32)).sample
        >>> out.shape
        torch.Size([2, 4, 8, 8])
    """
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=2,
        norm_num_groups=8,
    )
    return unet.eval()


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    """A tiny ``AutoencoderKL`` with a spatial factor of 2 and 4 latent channels.

    Shape:
        - encode: images ``(B, 3, H, W)`` → ``latent_dist`` of ``(B, 4, H/2, W/2)``.
        - decode: latents ``(B, 4, h, w)`` → ``.sample`` ``(B, 3, 2h, 2w)``.

    Examples:
        >>> vae = tiny_vae()
        >>> with torch.no_grad():
        ...     latents = vae.encode(torch.randn(1, 3, 16, 16)).latent_dist.mean
        ...     images = vae.decode(latents).sample
        >>> latents.shape, images.shape
        (torch.Size([1, 4, 8, 8]), torch.Size([1, 3, 16, 16]))
    """
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
        scaling_factor=0.5,
    )
    return vae.eval()


@dataclass
class TinyComponents:
    """The five Stable Diffusion components, tiny and random.

    Args:
        vae: [`tiny_vae`][zerocon.testing.tiny_vae] (spatial factor 2, 4 latent channels).
        text_encoder: [`tiny_text_encoder`][zerocon.testing.tiny_text_encoder] (``D = 32``, ``L = 16``).
        tokenizer: [`build_word_tokenizer`][zerocon.testing.build_word_tokenizer] over ``TINY_WORDS`` (``model_max_length = 16``).
        unet: [`tiny_unet`][zerocon.testing.tiny_unet] (``cross_attention_dim = 32``).
        scheduler: a ``DDIMScheduler`` with Stable Diffusion's betas.

    Shape:
        - images ``(B, 3, 16, 16)`` ↔ latents ``(B, 4, 8, 8)`` (vae).
        - input_ids ``(B, 16)`` → prompt embeddings ``(B, 16, 32)`` (text_encoder).
        - latents ``(B, 4, 8, 8)`` + embeddings ``(B, 16, 32)`` → noise ``(B, 4, 8, 8)`` (unet).

    Examples:
        >>> c = tiny_components()
        >>> ids = c.tokenizer(["a red circle"], padding="max_length", return_tensors="pt").input_ids
        >>> with torch.no_grad():
        ...     embeds = c.text_encoder(ids).last_hidden_state
        ...     noise = c.unet(torch.randn(1, 4, 8, 8), 10, embeds).sample
        >>> embeds.shape, noise.shape
        (torch.Size([1, 16, 32]), torch.Size([1, 4, 8, 8]))
    """

    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    unet: UNet2DConditionModel
    scheduler: DDIMScheduler


TINY_WORDS = ["a", "an", "the", "photo", "of", "on", "in", "with", "background", "red", "green", "blue", "yellow", "white", "black", "gray", "circle", "square", "triangle", "cat", "dog"]


def tiny_components(seed: int = 0) -> TinyComponents:
    """All SD components, tiny, sharing one small word vocabulary (see ``TINY_WORDS``).

    Args:
        seed: the seed of the random weights (text encoder, UNet, VAE).

    Shape:
        See [`TinyComponents`][zerocon.testing.TinyComponents]: latents ``(B, 4, 8, 8)``, embeddings ``(B, 16, 32)``.

    Examples:
        >>> c = tiny_components(seed=0)
        >>> c.unet.config.sample_size, c.text_encoder.config.hidden_size, c.tokenizer.model_max_length
        (8, 32, 16)
    """
    tokenizer = build_word_tokenizer(TINY_WORDS, model_max_length=16)
    text_encoder = tiny_text_encoder(len(tokenizer), hidden_size=32, max_length=16, seed=seed)
    unet = tiny_unet(cross_attention_dim=32, sample_size=8, seed=seed)
    vae = tiny_vae(seed=seed)
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return TinyComponents(vae, text_encoder, tokenizer, unet, scheduler)
