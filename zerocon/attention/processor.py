"""``RecordingAttnProcessor``: a diffusers attention processor that reports what it computes."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float, Shaped
from torch import Tensor


@runtime_checkable
class AttentionSink(Protocol):
    """Receiver of what a [`RecordingAttnProcessor`][zerocon.attention.RecordingAttnProcessor] records (e.g. an ``AttentionStore``).

    A runtime-checkable protocol: any object with these three methods is a sink.

    Shape:
        - receive_cross ``probs``: ``(B·heads, H·W, L)``, batch-major (row ``b·heads + h``).
        - receive_self ``output``: ``(B, H·W, C)``.

    Examples:
        >>> from zerocon.attention import AttentionStore
        >>> isinstance(AttentionStore(), AttentionSink)
        True
    """

    def wants(self, layer: str, is_cross: bool, num_pixels: int) -> bool:
        """Whether this call of ``layer`` (query length ``num_pixels``) should be recorded."""
        ...

    def receive_cross(self, layer: str, probs: Float[Tensor, "bh p t"], heads: int) -> Float[Tensor, "bh p t"] | None:
        """Receive cross-attention probabilities laid out ``(batch heads)``, batch-major.

        A sink may return a tensor of the same shape: the layer then attends with it instead
        (prompt-to-prompt-style attention editing). ``None`` keeps the computed maps.
        """
        ...

    def receive_self(self, layer: str, output: Float[Tensor, "b p c"]) -> None:
        """Receive a self-attention output after ``to_out``."""
        ...


def _injects(sink: Any, layer: str, is_cross: bool) -> bool:
    """Whether ``sink`` edits this self-attention call's queries and keys (optional sink API).

    A sink may also offer ``injects(layer) -> bool`` and
    ``edit_self_query_key(layer, query, key) -> (query, key) | None`` (e.g. an
    ``AttentionStore`` with a [`SelfAttentionInjection`][zerocon.attention.SelfAttentionInjection]); the layer then
    attends with the returned queries and keys.
    """
    if is_cross:
        return False
    injects = getattr(sink, "injects", None)
    return callable(injects) and bool(injects(layer))


class RecordingAttnProcessor:
    """A diffusers attention processor that records cross-attention maps or self-attention outputs.

    When its sink wants a record of the call, it computes attention like diffusers' stock
    processors — ``spatial_norm``, 4-D inputs, ``group_norm``, ``norm_cross``, ``norm_q`` /
    ``norm_k``, attention masks, ``to_out``, ``residual_connection`` and
    ``rescale_output_factor`` included — and hands the record to the sink:

    - cross-attention calls (``encoder_hidden_states`` given): explicit probabilities from
      ``attn.get_attention_scores`` (as ``AttnProcessor``), sent with ``sink.receive_cross``;
      when the sink returns a tensor, the layer attends with those maps instead (editing);
    - self-attention calls: ``F.scaled_dot_product_attention`` on ``(batch, heads, tokens,
      dim)`` inputs (as ``AttnProcessor2_0``, with ``scale=attn.scale``; 4-D inputs let
      PyTorch pick its memory-efficient kernel); the output after ``to_out`` goes to
      ``sink.receive_self``.

    Calls the sink does not want (paused store, other resolution) go to ``fallback`` (the
    layer's original processor) unchanged, or, without one, through the fused path above. No
    state is written onto the ``attn`` module.

    Args:
        layer: the layer name the records are filed under.
        sink: the receiver of records (see [`AttentionSink`][zerocon.attention.AttentionSink]).
        fallback: the processor to delegate unrecorded calls to, or ``None``.

    Shape:
        - hidden_states: ``(B, N, C)`` or ``(B, C, H, W)``
        - encoder_hidden_states: ``(B, L, D)`` or ``None``
        - returns: same shape as ``hidden_states``

    Raises:
        TypeError: if ``sink`` does not implement [`AttentionSink`][zerocon.attention.AttentionSink].

    Examples:
        >>> from zerocon.attention import AttentionStore
        >>> store = AttentionStore()
        >>> proc = RecordingAttnProcessor("mid_block.attn2", store)
        >>> proc.layer
        'mid_block.attn2'
    """

    def __init__(self, layer: str, sink: AttentionSink, fallback: Any | None = None) -> None:
        if not isinstance(sink, AttentionSink):
            raise TypeError(
                "sink must implement wants / receive_cross / receive_self, "
                f"got {type(sink).__name__}"
            )
        if fallback is not None and not callable(fallback):
            raise TypeError(f"fallback must be a callable processor, got {type(fallback).__name__}")
        self.layer = layer
        self.sink = sink
        self.fallback = fallback

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layer={self.layer!r})"

    def __call__(
        self,
        attn: Any,
        hidden_states: Float[Tensor, "..."],
        encoder_hidden_states: Float[Tensor, "b m d"] | None = None,
        attention_mask: Shaped[Tensor, "..."] | None = None,
        temb: Float[Tensor, "..."] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Float[Tensor, "..."]:
        """Run attention for ``attn`` and record it if the sink wants it.

        Args:
            attn: the diffusers ``Attention`` module calling this processor.
            hidden_states: the query-side input.
            encoder_hidden_states: the key/value-side input for cross-attention, else ``None``.
            attention_mask: an optional additive mask, as diffusers passes it.
            temb: time embedding, used only by ``attn.spatial_norm``.
            *args: passed on to ``fallback`` only.
            **kwargs: passed on to ``fallback`` only.

        Returns:
            The attention module's output, shaped like ``hidden_states``.
        """
        if hidden_states.ndim == 4:
            num_pixels = hidden_states.shape[2] * hidden_states.shape[3]
        else:
            num_pixels = hidden_states.shape[1]
        is_cross = encoder_hidden_states is not None
        record = self.sink.wants(self.layer, is_cross, num_pixels)
        if not record and not _injects(self.sink, self.layer, is_cross):
            if self.fallback is not None:
                if args:
                    return self.fallback(
                        attn,
                        hidden_states,
                        encoder_hidden_states,
                        attention_mask,
                        temb,
                        *args,
                        **kwargs,
                    )
                if temb is not None:
                    kwargs["temb"] = temb
                return self.fallback(
                    attn,
                    hidden_states,
                    encoder_hidden_states=encoder_hidden_states,
                    attention_mask=attention_mask,
                    **kwargs,
                )
            return self._attend(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        return self._attend(
            attn, hidden_states, encoder_hidden_states, attention_mask, temb, record=record
        )

    def _attend(
        self,
        attn: Any,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None,
        attention_mask: Tensor | None,
        temb: Tensor | None,
        record: bool = False,
    ) -> Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)

        spatial: tuple[int, int] | None = None
        if hidden_states.ndim == 4:
            spatial = (hidden_states.shape[2], hidden_states.shape[3])
            hidden_states = rearrange(hidden_states, "b c h w -> b (h w) c")

        is_cross = encoder_hidden_states is not None
        batch_size, sequence_length, _ = (
            encoder_hidden_states.shape
            if encoder_hidden_states is not None
            else hidden_states.shape
        )
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(
                attention_mask, sequence_length, batch_size
            )

        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            context = hidden_states
        elif attn.norm_cross:
            context = attn.norm_encoder_hidden_states(encoder_hidden_states)
        else:
            context = encoder_hidden_states
        key = attn.to_k(context)
        value = attn.to_v(context)

        # (batch heads) layout, batch-major: row b * heads + h.
        query = attn.head_to_batch_dim(query)
        key = attn.head_to_batch_dim(key)
        value = attn.head_to_batch_dim(value)
        norm_q = getattr(attn, "norm_q", None)
        norm_k = getattr(attn, "norm_k", None)
        if norm_q is not None:
            query = norm_q(query)
        if norm_k is not None:
            key = norm_k(key)

        if record and is_cross:
            probs = attn.get_attention_scores(query, key, attention_mask)
            replacement = self.sink.receive_cross(self.layer, probs, attn.heads)
            if replacement is not None:
                if replacement.shape != probs.shape:
                    raise ValueError(
                        f"layer {self.layer!r}: the sink returned maps of shape "
                        f"{tuple(replacement.shape)}, expected {tuple(probs.shape)}"
                    )
                probs = replacement.to(dtype=probs.dtype)
            out = torch.bmm(probs, value)
        else:
            if _injects(self.sink, self.layer, is_cross):
                replaced = self.sink.edit_self_query_key(self.layer, query, key)  # type: ignore[attr-defined]
                if replaced is not None:
                    query, key = replaced
            # (batch, heads, tokens, dim), as diffusers' AttnProcessor2_0 calls it: with 3-D
            # inputs PyTorch's CPU kernel falls back to the plain algorithm, which holds the whole
            # (heads × tokens × tokens) attention, and keeps it for a backward pass.
            heads = attn.heads
            rows = query.shape[0] // heads

            def split(x: Tensor) -> Tensor:
                return x.view(rows, heads, x.shape[1], x.shape[2])

            mask = None if attention_mask is None else attention_mask.view(rows, heads, -1, attention_mask.shape[-1])
            out = F.scaled_dot_product_attention(
                split(query), split(key), split(value), attn_mask=mask, dropout_p=0.0, scale=attn.scale
            ).to(query.dtype)
            out = out.reshape(rows * heads, out.shape[2], out.shape[3])
        out = attn.batch_to_head_dim(out)

        out = attn.to_out[0](out)
        out = attn.to_out[1](out)
        if record and not is_cross:
            self.sink.receive_self(self.layer, out)

        if spatial is not None:
            out = rearrange(out, "b (h w) c -> b c h w", h=spatial[0], w=spatial[1])
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor
