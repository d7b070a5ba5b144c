"""Architectures of the embedded shapes-world model (configs only; weights come from training)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from zerocon.shapes.vocabulary import world_words
from zerocon.shapes.word_tokenizer import build_word_tokenizer, special_token_ids

#: Stable Diffusion's training noise schedule (so stock diffusers pipelines treat us like SD).
SD_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
}


@dataclass(frozen=True)
class ModelSizes:
    """Widths of every network; ``ModelSizes.tiny()`` is for smoke tests."""

    vae_channels: tuple[int, ...] = (32, 64, 64)
    unet_channels: tuple[int, ...] = (64, 128)
    unet_heads: int = 2
    text_width: int = 64
    text_layers: int = 2
    max_length: int = 16
    clip_width: int = 64
    clip_layers: int = 2
    clip_patch: int = 8
    image_size: int = 64

    @classmethod
    def tiny(cls) -> ModelSizes:
        return cls((8, 8, 8), (16, 32), 2, 16, 1, 16, 16, 1, 16, 64)

    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae_channels) - 1)


def build_tokenizer(sizes: ModelSizes, directory: str | None = None) -> CLIPTokenizer:
    """CLIP BPE tokenizer whose vocabulary spells each word of the world as one token."""
    return build_word_tokenizer(world_words(), directory, model_max_length=sizes.max_length)


def build_vae(sizes: ModelSizes) -> AutoencoderKL:
    n = len(sizes.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=sizes.vae_channels,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=min(32, min(sizes.vae_channels)),
        sample_size=sizes.image_size,
    )


def _text_tower(vocab_size: int, width: int, layers: int, max_length: int) -> dict[str, Any]:
    """``CLIPTextConfig`` keyword arguments of a text tower over the world's tokenizer."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": width,
        "intermediate_size": width * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "max_position_embeddings": max_length,
        **special_token_ids(vocab_size),
    }


def build_text_encoder(sizes: ModelSizes, vocab_size: int) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(**_text_tower(vocab_size, sizes.text_width, sizes.text_layers, sizes.max_length))
    )


def build_unet(sizes: ModelSizes) -> UNet2DConditionModel:
    """Cross-attention at every resolution (down, mid, up); self-attention in every block."""
    n = len(sizes.unet_channels)
    return UNet2DConditionModel(
        sample_size=sizes.image_size // sizes.vae_factor,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=sizes.unet_channels,
        down_block_types=("CrossAttnDownBlock2D",) * n,
        up_block_types=("CrossAttnUpBlock2D",) * n,
        cross_attention_dim=sizes.text_width,
        attention_head_dim=sizes.unet_heads,
        norm_num_groups=min(32, min(sizes.unet_channels)),
    )


def build_clip(sizes: ModelSizes, vocab_size: int) -> CLIPModel:
    text = _text_tower(vocab_size, sizes.clip_width, sizes.clip_layers, sizes.max_length)
    vision = {
        "hidden_size": sizes.clip_width,
        "intermediate_size": sizes.clip_width * 2,
        "num_hidden_layers": sizes.clip_layers,
        "num_attention_heads": 2,
        "image_size": sizes.image_size,
        "patch_size": sizes.clip_patch,
    }
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=sizes.clip_width))


def build_train_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**SD_SCHEDULE, clip_sample=False)


def build_sample_scheduler() -> DDIMScheduler:
    """DDIM with Stable Diffusion 1.x's settings."""
    return DDIMScheduler(**SD_SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
