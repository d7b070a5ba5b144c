"""``JointAttentionRecorder``: cross-attention maps of an MMDiT's joint attention (SD3, SD3.5).

An SD3 block attends over the concatenation of its image tokens and its text tokens (image first,
diffusers' ``JointAttnProcessor2_0``), through a fused kernel that never materialises the
probabilities. The edit's cross-attention loss needs the image→text part of them, so this
processor lets the layer's own processor compute the output (untouched) and recomputes, from the
same projections and norms, ``softmax(q_image · [k_image; k_text]ᵀ / √d)`` restricted to the text
columns: for every image token, how much of its attention goes to each text token. The maps keep
their autograd graph, so a loss on them reaches the latent.

FLUX's blocks put the text first and rotate q and k (RoPE): see ``FluxAttentionRecorder``. An
[`AttentionStore`][zerocon.attention.AttentionStore] installs the right recorder on each joint
layer it hooks; a sink with a ``wants(name, is_cross, num_pixels)`` method is asked first.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor


class JointAttentionRecorder:
    """A processor for one joint-attention layer that records its image→text probabilities.

    Args:
        name: the layer's name (the key of its records).
        sink: anything with ``receive_cross(name, probs, heads)`` (an
            [`AttentionStore`][zerocon.attention.AttentionStore] or a plain collector); ``probs``
            is ``(B·heads, N_image, L_text)``, batch-major.
        fallback: the layer's own processor, which computes the output.

    Shape:
        records ``(B·heads, N_image, L_text)``; the layer's output is the fallback's.

    Examples:
        >>> import torch
        >>> from diffusers import SD3Transformer2DModel
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = SD3Transformer2DModel(sample_size=4, patch_size=1, in_channels=4, num_layers=1,
        ...     attention_head_dim=8, num_attention_heads=2, caption_projection_dim=16, joint_attention_dim=16,
        ...     pooled_projection_dim=16, out_channels=4)
        >>> class Maps(dict):
        ...     def receive_cross(self, name, probs, heads):
        ...         self[name] = probs
        >>> maps = Maps()
        >>> model.set_attn_processor({name: JointAttentionRecorder(name, maps, processor)
        ...                           for name, processor in model.attn_processors.items()})
        >>> _ = model(torch.randn(1, 4, 4, 4), torch.randn(1, 5, 16), torch.randn(1, 16), torch.tensor([500]))
        >>> {name: tuple(probs.shape) for name, probs in maps.items()}
        {'transformer_blocks.0.attn.processor': (2, 16, 5)}
    """

    def __init__(self, name: str, sink: Any, fallback: Any) -> None:
        self.name, self.sink, self.fallback = name, sink, fallback

    def __call__(self, attn: Any, hidden_states: Float[Tensor, "b n c"],
                 encoder_hidden_states: Float[Tensor, "b l c2"] | None = None, *args: Any, **kwargs: Any) -> Any:
        output = self.fallback(attn, hidden_states, encoder_hidden_states, *args, **kwargs)
        wants = getattr(self.sink, "wants", None)  # a store may be paused, or skip this resolution
        if encoder_hidden_states is not None and (wants is None or wants(self.name, True, int(hidden_states.shape[1]))):
            self.sink.receive_cross(self.name, image_to_text_probabilities(attn, hidden_states, encoder_hidden_states),
                                    int(attn.heads))
        return output


def image_to_text_probabilities(
    attn: Any, hidden_states: Float[Tensor, "b n c"], encoder_hidden_states: Float[Tensor, "b l c2"]
) -> Float[Tensor, "bh n l"]:
    """The text columns of a joint attention's probabilities, recomputed as diffusers' processor
    projects and normalises (``to_q``/``to_k``, ``add_k_proj``, and the optional qk-norms).

    Shape:
        hidden_states ``(B, N, C)``, encoder_hidden_states ``(B, L, C₂)`` → ``(B·heads, N, L)``.

    Examples:
        >>> import torch
        >>> from diffusers.models.attention_processor import Attention, JointAttnProcessor2_0
        >>> attn = Attention(8, heads=2, dim_head=4, added_kv_proj_dim=8, context_pre_only=False,
        ...                  processor=JointAttnProcessor2_0())
        >>> probs = image_to_text_probabilities(attn, torch.randn(1, 6, 8), torch.randn(1, 3, 8))
        >>> probs.shape, bool((probs.sum(-1) < 1).all())
        (torch.Size([2, 6, 3]), True)
    """
    batch, heads = hidden_states.shape[0], int(attn.heads)
    query = attn.to_q(hidden_states)
    head_dim = query.shape[-1] // heads

    def split(x: Tensor) -> Tensor:
        return x.view(batch, -1, heads, head_dim).transpose(1, 2)

    query, key = split(query), split(attn.to_k(hidden_states))
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    text_key = split(attn.add_k_proj(encoder_hidden_states))
    if attn.norm_added_k is not None:
        text_key = attn.norm_added_k(text_key)
    # The processor's kernel (scaled_dot_product_attention) scales by 1/√d; image keys come first.
    logits = query @ torch.cat([key, text_key], dim=2).transpose(-1, -2) / math.sqrt(head_dim)
    probs = logits.softmax(dim=-1)[..., key.shape[2]:]
    return probs.reshape(batch * heads, probs.shape[2], probs.shape[3])
