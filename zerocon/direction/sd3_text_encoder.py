"""``SD3TextEncoder``: Stable Diffusion 3's text encoders as one encoder of packed conditionings.

SD3 conditions its transformer on a token sequence and a pooled vector. The sequence is the two
CLIP encoders' penultimate hidden states, concatenated along the features (CLIP-L then CLIP-G)
and zero-padded to the T5 width, followed by T5's tokens (zeros when the T5 encoder is absent,
as diffusers does). The pooled vector is the two CLIP encoders' projected embeddings side by
side; it drives the transformer's AdaLN. As for SDXL, the pooled vector is packed as one extra
row after the token rows, so the direction arithmetic (``c + Δc``) moves every stream: the CLIP
tokens, the T5 tokens and the pooled vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn


class SD3TextEncoder(nn.Module):
    """SD3's ``text_encoder`` (CLIP-L), ``text_encoder_2`` (CLIP-G) and optional ``text_encoder_3`` (T5).

    Encodes as diffusers' ``StableDiffusion3Pipeline.encode_prompt`` does with its defaults (no
    clip skip, ``max_sequence_length`` T5 tokens), then appends the pooled vector as the last
    row. The CLIP tokens come first, so a word's position in the caption's CLIP tokens is its
    row in the sequence.

    Args:
        text_encoder: CLIP-L with a projection (``CLIPTextModelWithProjection``).
        tokenizer: its tokenizer.
        text_encoder_2: CLIP-G with a projection.
        tokenizer_2: its tokenizer.
        text_encoder_3: T5 (``T5EncoderModel``), or ``None``: zeros, as diffusers uses then.
        tokenizer_3: T5's tokenizer.
        joint_attention_dim: the width of the token rows (the transformer's
            ``joint_attention_dim``, T5's width).
        max_sequence_length: T5 tokens (zeros without T5).

    Shape:
        ``encode_batch``: ``(n, L_clip + L_t5 + 1, D)``; the last row holds the pooled vector in
        its first ``P`` features.

    Raises:
        ValueError: when the pooled vector or the CLIP features are wider than ``joint_attention_dim``.

    Examples:
        >>> from zerocon.testing import tiny_sd3_components
        >>> c = tiny_sd3_components()
        >>> encoder = SD3TextEncoder(c.text_encoder, c.tokenizer, c.text_encoder_2, c.tokenizer_2,
        ...                          joint_attention_dim=64, max_sequence_length=8)
        >>> encoder.encode_batch(["a red circle"]).shape  # 16 CLIP rows, 8 T5 rows, the pooled row
        torch.Size([1, 25, 64])
    """

    def __init__(self, text_encoder: Any, tokenizer: Any, text_encoder_2: Any, tokenizer_2: Any,
                 text_encoder_3: Any = None, tokenizer_3: Any = None, *, joint_attention_dim: int,
                 max_sequence_length: int = 256) -> None:
        super().__init__()
        self.text_encoder, self.text_encoder_2, self.text_encoder_3 = text_encoder, text_encoder_2, text_encoder_3
        self.tokenizer, self.tokenizer_2, self.tokenizer_3 = tokenizer, tokenizer_2, tokenizer_3
        self.width, self.max_sequence_length = int(joint_attention_dim), int(max_sequence_length)
        clip = int(text_encoder.config.hidden_size) + int(text_encoder_2.config.hidden_size)
        if clip > self.width or self.pooled_dim > self.width:
            raise ValueError(f"the CLIP features ({clip}) and the pooled vector ({self.pooled_dim}) must fit "
                             f"joint_attention_dim={self.width}")
        if (text_encoder_3 is None) != (tokenizer_3 is None):
            raise ValueError("give text_encoder_3 and tokenizer_3 together (or neither)")

    @property
    def config(self) -> Any:
        """The CLIP-G config (its name names the encoders in saved directions)."""
        return self.text_encoder_2.config

    @property
    def encoder_name(self) -> str:
        """``sd3[clip-l|clip-g|t5]``: the family and every encoder's name (saved with directions)."""
        from zerocon.direction.edit_direction import _encoder_name

        t5 = _encoder_name(self.text_encoder_3) if self.text_encoder_3 is not None else "no-t5"
        return f"sd3[{_encoder_name(self.text_encoder)}|{_encoder_name(self.text_encoder_2)}|{t5}]"

    @property
    def pooled_dim(self) -> int:
        """``P``: the width of the pooled vector (both CLIP projections side by side)."""
        return sum(int(getattr(e.config, "projection_dim", None) or e.config.hidden_size)
                   for e in (self.text_encoder, self.text_encoder_2))

    @staticmethod
    def _clip(encoder: nn.Module, tokenizer: Any, prompts: list[str]) -> tuple[Tensor, Tensor]:
        device = next(encoder.parameters()).device
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids.to(device)
        output = encoder(ids, output_hidden_states=True)
        return output.hidden_states[-2], output[0]

    def _t5(self, prompts: list[str], like: Tensor) -> Tensor:
        if self.text_encoder_3 is None:
            return like.new_zeros(len(prompts), self.max_sequence_length, self.width)
        device = next(self.text_encoder_3.parameters()).device
        ids = self.tokenizer_3(prompts, padding="max_length", max_length=self.max_sequence_length, truncation=True,
                               add_special_tokens=True, return_tensors="pt").input_ids.to(device)
        return self.text_encoder_3(ids)[0].to(like.dtype)

    @torch.no_grad()
    def encode_batch(self, prompts: Sequence[str]) -> Float[Tensor, "n l1 d"]:
        """Packed conditionings of ``prompts`` (see the class)."""
        prompts = list(prompts)
        first, pooled_1 = self._clip(self.text_encoder, self.tokenizer, prompts)
        second, pooled_2 = self._clip(self.text_encoder_2, self.tokenizer_2, prompts)
        clip = torch.cat([first.to(second.dtype), second], dim=-1)
        clip = F.pad(clip, (0, self.width - clip.shape[-1]))
        tokens = torch.cat([clip, self._t5(prompts, clip)], dim=-2)
        pooled = torch.cat([pooled_1.to(second.dtype), pooled_2], dim=-1)
        row = tokens.new_zeros(tokens.shape[0], 1, self.width)
        row[:, 0, : pooled.shape[-1]] = pooled
        return torch.cat([tokens, row], dim=1)

    def forward(self, prompts: Sequence[str]) -> Float[Tensor, "n l d"]:
        return self.encode_batch(prompts)
