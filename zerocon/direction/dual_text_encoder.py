"""``DualTextEncoder``: SDXL's two CLIP text encoders as one encoder of packed conditionings.

Stable Diffusion XL conditions its UNet on three things: the token embeddings of two CLIP text
encoders, concatenated along the features (the penultimate hidden states, ``D = D₁ + D₂``), the
pooled, projected embedding of the second encoder (``P`` features, the UNet's ``text_embeds``),
and the image size and crop (``time_ids``, computed from the latent's size).

zerocon's editor carries one conditioning tensor per prompt through the direction arithmetic
(``c + Δc``), classifier-free guidance and every pass. So this encoder *packs* the pooled
embedding as one extra row after the ``L`` token rows, zero-padded to ``D``:
``(n, L + 1, D)``. The UNet unpacks it again (see
[`PackedConditioning`][zerocon.direction.PackedConditioning]); the direction of a word pair then
moves the pooled embedding too, by the difference of its sentence means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn


class DualTextEncoder(nn.Module):
    """SDXL's ``text_encoder`` + ``text_encoder_2`` encoding prompts into packed conditionings.

    Encodes as diffusers' ``StableDiffusionXLPipeline.encode_prompt`` does (both tokenizers pad
    to their ``model_max_length``; the penultimate hidden states; the second encoder's
    ``text_embeds``), then appends the pooled embedding as row ``L``.

    Args:
        text_encoder: the first CLIP text encoder (``CLIPTextModel``).
        tokenizer: its tokenizer.
        text_encoder_2: the second, with a projection (``CLIPTextModelWithProjection``).
        tokenizer_2: its tokenizer.

    Shape:
        - Output of ``encode_batch``: ``(n, L + 1, D₁ + D₂)``; row ``L`` holds the pooled
          embedding in its first ``P`` features and zeros after.

    Raises:
        ValueError: when the pooled embedding is wider than the token features, or the two
            tokenizers pad to different lengths.

    Examples:
        >>> from zerocon.testing import tiny_sdxl_components
        >>> c = tiny_sdxl_components()
        >>> encoder = DualTextEncoder(c.text_encoder, c.tokenizer, c.text_encoder_2, c.tokenizer_2)
        >>> encoder.encode_batch(["a red circle"]).shape
        torch.Size([1, 17, 64])
    """

    def __init__(self, text_encoder: Any, tokenizer: Any, text_encoder_2: Any, tokenizer_2: Any) -> None:
        super().__init__()
        self.text_encoder = text_encoder
        self.text_encoder_2 = text_encoder_2
        self.tokenizer = tokenizer
        self.tokenizer_2 = tokenizer_2
        if tokenizer.model_max_length != tokenizer_2.model_max_length:
            raise ValueError(
                f"the tokenizers pad to {tokenizer.model_max_length} and {tokenizer_2.model_max_length} tokens; "
                "SDXL's two encoders must see sequences of one length"
            )
        width = int(text_encoder.config.hidden_size) + int(text_encoder_2.config.hidden_size)
        if self.pooled_dim > width:
            raise ValueError(f"the pooled embedding ({self.pooled_dim}) is wider than the token features ({width})")

    @property
    def config(self) -> Any:
        """The second encoder's config (its name is the model's name in saved directions)."""
        return self.text_encoder_2.config

    @property
    def encoder_name(self) -> str:
        """``sdxl[first|second]``: the family and both encoders' names (saved with directions)."""
        from zerocon.direction.edit_direction import _encoder_name

        return f"sdxl[{_encoder_name(self.text_encoder)}|{_encoder_name(self.text_encoder_2)}]"

    @property
    def pooled_dim(self) -> int:
        """``P``: the width of the pooled, projected embedding."""
        config: Any = self.text_encoder_2.config
        return int(getattr(config, "projection_dim", None) or config.hidden_size)

    def _hidden(self, encoder: nn.Module, tokenizer: Any, prompts: list[str]) -> tuple[Tensor, Any]:
        device = next(encoder.parameters()).device
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids.to(device)
        output = encoder(ids, output_hidden_states=True)
        return output.hidden_states[-2], output

    @torch.no_grad()
    def encode_batch(self, prompts: Sequence[str]) -> Float[Tensor, "n l1 d"]:
        """Packed conditionings of ``prompts`` (see the class).

        Args:
            prompts: the texts.

        Returns:
            ``(n, L + 1, D₁ + D₂)`` on the second encoder's device, in its dtype.
        """
        prompts = list(prompts)
        first, _ = self._hidden(self.text_encoder, self.tokenizer, prompts)
        second, output = self._hidden(self.text_encoder_2, self.tokenizer_2, prompts)
        pooled = output[0]
        tokens = torch.cat([first.to(second.dtype), second], dim=-1)
        row = tokens.new_zeros(tokens.shape[0], 1, tokens.shape[-1])
        row[:, 0, : pooled.shape[-1]] = pooled.to(tokens.dtype)
        return torch.cat([tokens, row], dim=1)

    def forward(self, prompts: Sequence[str]) -> Float[Tensor, "n l d"]:
        return self.encode_batch(prompts)
