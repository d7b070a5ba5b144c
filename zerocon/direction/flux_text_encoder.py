"""``FluxTextEncoder``: FLUX's CLIP and T5 encoders as one encoder of packed conditionings.

FLUX conditions its transformer on T5's token embeddings (the sequence its joint attention
sees) and on CLIP's pooled output (a vector for its AdaLN). As for SDXL and SD3, the pooled
vector is packed as one extra row after the T5 rows, so the edit direction moves both streams.
A word's map is found in the T5 sequence: positions come from the T5 tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn


class FluxTextEncoder(nn.Module):
    """FLUX's ``text_encoder`` (CLIP, pooled) and ``text_encoder_2`` (T5, tokens) as one packed encoder.

    Encodes as diffusers' ``FluxPipeline.encode_prompt`` does: CLIP's ``pooler_output`` (77 tokens
    padded), T5's last hidden state over ``max_sequence_length`` tokens; then the pooled vector
    is appended as the last row (zero-padded to T5's width).

    Args:
        text_encoder: CLIP (``CLIPTextModel``).
        tokenizer: its tokenizer.
        text_encoder_2: T5 (``T5EncoderModel``).
        tokenizer_2: its tokenizer.
        max_sequence_length: T5 tokens (FLUX-dev 512, schnell 256).

    Shape:
        ``encode_batch``: ``(n, L_t5 + 1, D_t5)``; the last row holds the pooled vector in its
        first ``P`` features.

    Raises:
        ValueError: when the pooled vector is wider than T5's features.

    Examples:
        >>> from zerocon.testing import tiny_flux_components
        >>> c = tiny_flux_components()
        >>> FluxTextEncoder(c.text_encoder, c.tokenizer, c.text_encoder_2, c.tokenizer_2,
        ...                 max_sequence_length=16).encode_batch(["a red circle"]).shape
        torch.Size([1, 17, 32])
    """

    def __init__(self, text_encoder: Any, tokenizer: Any, text_encoder_2: Any, tokenizer_2: Any,
                 max_sequence_length: int = 512) -> None:
        super().__init__()
        self.text_encoder, self.text_encoder_2 = text_encoder, text_encoder_2
        self.tokenizer, self.tokenizer_2 = tokenizer, tokenizer_2
        self.max_sequence_length = int(max_sequence_length)
        self.width = int(text_encoder_2.config.d_model)
        if self.pooled_dim > self.width:
            raise ValueError(f"the pooled vector ({self.pooled_dim}) is wider than T5's features ({self.width})")

    @property
    def config(self) -> Any:
        """T5's config (its name names the encoders in saved directions)."""
        return self.text_encoder_2.config

    @property
    def encoder_name(self) -> str:
        """``flux[clip|t5]``: the family and both encoders' names (saved with directions)."""
        from zerocon.direction.edit_direction import _encoder_name

        return f"flux[{_encoder_name(self.text_encoder)}|{_encoder_name(self.text_encoder_2)}]"

    @property
    def pooled_dim(self) -> int:
        """``P``: the width of CLIP's pooled output."""
        return int(self.text_encoder.config.hidden_size)

    @torch.no_grad()
    def encode_batch(self, prompts: Sequence[str]) -> Float[Tensor, "n l1 d"]:
        """Packed conditionings of ``prompts`` (see the class)."""
        prompts = list(prompts)
        clip_device = next(self.text_encoder.parameters()).device
        clip_ids = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                                  truncation=True, return_tensors="pt").input_ids.to(clip_device)
        pooled = self.text_encoder(clip_ids, output_hidden_states=False).pooler_output
        t5_device = next(self.text_encoder_2.parameters()).device
        t5_ids = self.tokenizer_2(prompts, padding="max_length", max_length=self.max_sequence_length,
                                  truncation=True, return_tensors="pt").input_ids.to(t5_device)
        tokens = self.text_encoder_2(t5_ids, output_hidden_states=False)[0]
        row = tokens.new_zeros(tokens.shape[0], 1, self.width)
        row[:, 0, : pooled.shape[-1]] = pooled.to(tokens.dtype)
        return torch.cat([tokens, row], dim=1)

    def forward(self, prompts: Sequence[str]) -> Float[Tensor, "n l d"]:
        return self.encode_batch(prompts)
