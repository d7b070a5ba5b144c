"""``FluxAttentionRecorder``: cross-attention maps of FLUX's joint attention, double and single blocks.

FLUX differs from SD3 in three ways that matter for recording (diffusers' ``FluxAttnProcessor``):
the text tokens come *first* in the joint sequence; the queries and keys of the whole sequence
are rotated (RoPE) before the product; and the single-stream blocks see one sequence
(``[text; image]``, ``encoder_hidden_states=None``) whose text length only the block knows. The
probabilities are never materialised (``dispatch_attention_fn``), so, as for SD3, the recorder
lets the layer's own processor compute the output and recomputes the image rows of the
probabilities from the same projections, norms and rotation, keeping the autograd graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor


def _heads(x: Tensor, head_dim: int) -> Tensor:
    return x.unflatten(-1, (-1, head_dim))  # (B, S, H, D), as the processor splits


def flux_query_key_value(
    attn: Any, hidden_states: Float[Tensor, "b n c"], encoder_hidden_states: Float[Tensor, "b l c"] | None,
    image_rotary_emb: Any = None,
) -> tuple[Float[Tensor, "b h s d"], Float[Tensor, "b h s d"], Float[Tensor, "b h s d"]]:
    """Queries, keys and values of a FLUX attention layer's joint sequence, as its processor forms them.

    Projections (fused or not), the qk-norms, the text stream put first (double blocks), then
    RoPE on queries and keys. A single block's ``hidden_states`` already hold ``[text; image]``.

    Shape:
        ``(B, N, C)`` (and ``(B, L, C)``) → three ``(B, heads, S, head_dim)`` with ``S = L + N``
        for a double block, ``S = N`` for a single one.

    Examples:
        >>> from diffusers.models.transformers.transformer_flux import FluxAttention
        >>> attn = FluxAttention(16, heads=2, dim_head=8, added_kv_proj_dim=16)
        >>> q, k, v = flux_query_key_value(attn, torch.randn(1, 6, 16), torch.randn(1, 3, 16))
        >>> q.shape
        torch.Size([1, 2, 9, 8])
    """
    from diffusers.models.embeddings import apply_rotary_emb

    head_dim = int(attn.head_dim)
    if getattr(attn, "fused_projections", False):
        query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
    else:
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
    query, key, value = _heads(query, head_dim), _heads(key, head_dim), _heads(value, head_dim)
    query, key = attn.norm_q(query), attn.norm_k(key)
    if encoder_hidden_states is not None and attn.added_kv_proj_dim is not None:
        if getattr(attn, "fused_projections", False) and hasattr(attn, "to_added_qkv"):
            text_q, text_k, text_v = attn.to_added_qkv(encoder_hidden_states).chunk(3, dim=-1)
        else:
            text_q = attn.add_q_proj(encoder_hidden_states)
            text_k = attn.add_k_proj(encoder_hidden_states)
            text_v = attn.add_v_proj(encoder_hidden_states)
        text_q, text_k = attn.norm_added_q(_heads(text_q, head_dim)), attn.norm_added_k(_heads(text_k, head_dim))
        query, key = torch.cat([text_q, query], dim=1), torch.cat([text_k, key], dim=1)
        value = torch.cat([_heads(text_v, head_dim), value], dim=1)
    if image_rotary_emb is not None:
        query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
        key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)
    return query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)


def flux_image_probabilities(
    attn: Any, hidden_states: Float[Tensor, "b n c"], encoder_hidden_states: Float[Tensor, "b l c"] | None,
    image_rotary_emb: Any, text_length: int,
) -> Float[Tensor, "b h ni s"]:
    """The image tokens' rows of a FLUX layer's attention probabilities, over the whole sequence.

    Shape:
        ``(B, heads, N_image, S)``: rows are image queries; the first ``text_length`` columns
        are the text keys.

    Examples:
        >>> from diffusers.models.transformers.transformer_flux import FluxAttention
        >>> attn = FluxAttention(16, heads=2, dim_head=8, added_kv_proj_dim=16)
        >>> probs = flux_image_probabilities(attn, torch.randn(1, 6, 16), torch.randn(1, 3, 16), None, 3)
        >>> probs.shape, torch.allclose(probs.sum(-1), torch.ones(1, 2, 6))
        (torch.Size([1, 2, 6, 9]), True)
    """
    query, key, _ = flux_query_key_value(attn, hidden_states, encoder_hidden_states, image_rotary_emb)
    logits = query[:, :, text_length:] @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
    return logits.softmax(dim=-1)


def flux_image_to_text_probabilities(
    attn: Any, hidden_states: Float[Tensor, "b n c"], encoder_hidden_states: Float[Tensor, "b l c"] | None,
    image_rotary_emb: Any, text_length: int,
) -> Float[Tensor, "bh ni l"]:
    """For every image token, the share of its attention that goes to each text token.

    Shape:
        ``(B·heads, N_image, L_text)``, batch-major, as the store's records are.

    Examples:
        >>> from diffusers.models.transformers.transformer_flux import FluxAttention
        >>> attn = FluxAttention(16, heads=2, dim_head=8, pre_only=True)  # a single-stream layer
        >>> flux_image_to_text_probabilities(attn, torch.randn(1, 9, 16), None, None, 3).shape
        torch.Size([2, 6, 3])
    """
    probs = flux_image_probabilities(attn, hidden_states, encoder_hidden_states, image_rotary_emb, text_length)
    text = probs[..., :text_length]
    return text.reshape(-1, text.shape[2], text.shape[3])


class FluxAttentionRecorder:
    """A processor for one FLUX attention layer (double or single block) that records its image→text maps.

    Args:
        name: the layer's name (the key of its records).
        sink: anything with ``receive_cross(name, probs, heads)``; ``probs`` is
            ``(B·heads, N_image, L_text)``.
        fallback: the layer's own processor, which computes the output.
        text_length: for single-stream layers, a callable giving the current forward's text
            length (the block knows it; the layer does not). ``None``: single-stream layers are
            not recorded. Double-stream layers read it from ``encoder_hidden_states``.

    Shape:
        records ``(B·heads, N_image, L_text)``; the layer's output is the fallback's.

    Examples:
        >>> from diffusers.models.transformers.transformer_flux import FluxAttention, FluxAttnProcessor
        >>> attn = FluxAttention(16, heads=2, dim_head=8, added_kv_proj_dim=16)
        >>> maps = {}
        >>> class Sink:
        ...     def receive_cross(self, name, probs, heads): maps[name] = probs
        >>> attn.set_processor(FluxAttentionRecorder("double", Sink(), FluxAttnProcessor()))
        >>> _ = attn(torch.randn(1, 6, 16), torch.randn(1, 3, 16))
        >>> maps["double"].shape
        torch.Size([2, 6, 3])
    """

    def __init__(self, name: str, sink: Any, fallback: Any, text_length: Callable[[], int | None] | None = None) -> None:
        self.name, self.sink, self.fallback, self.text_length = name, sink, fallback, text_length

    def __call__(
        self,
        attn: Any,
        hidden_states: Float[Tensor, "b n c"],
        encoder_hidden_states: Float[Tensor, "b l c"] | None = None,
        attention_mask: Float[Tensor, "..."] | None = None,
        image_rotary_emb: Any = None,
    ) -> Any:
        output = self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        if encoder_hidden_states is not None:
            length: int | None = int(encoder_hidden_states.shape[1])
        else:
            length = self.text_length() if self.text_length is not None else None
        wants = getattr(self.sink, "wants", None)  # a store may be paused, or skip this resolution
        image_tokens = int(hidden_states.shape[1]) - (0 if encoder_hidden_states is not None else (length or 0))
        if length and (wants is None or wants(self.name, True, image_tokens)):
            probs = flux_image_to_text_probabilities(attn, hidden_states, encoder_hidden_states, image_rotary_emb,
                                                     length)
            self.sink.receive_cross(self.name, probs, int(attn.heads))
        return output
