"""``AttentionStore``: record a UNet's attention through diffusers' processor registry."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType, TracebackType
from typing import Any

from jaxtyping import Float
from torch import Tensor

from zerocon.attention.flux_processor import FluxAttentionRecorder
from zerocon.attention.injection import SelfAttentionInjection
from zerocon.attention.joint_processor import JointAttentionRecorder
from zerocon.attention.layers import (
    PROCESSOR_SUFFIX,
    attention_layers,
    is_joint_attention,
    processor_registry,
)
from zerocon.attention.processor import RecordingAttnProcessor
from zerocon.attention.records import AttentionRecords
from zerocon.attention.rows import BatchRows, normalize_batch_rows, take_batch_rows
from zerocon.attention.selector import LayerSelector

#: Processors that compute plain softmax attention, i.e. what RecordingAttnProcessor reproduces
#: (class names in diffusers' ``attention_processor`` module; looked up when a UNet is attached,
#: so importing zerocon.attention does not import diffusers).
_PLAIN_PROCESSOR_NAMES: tuple[str, ...] = (
    "AttnProcessor",
    "AttnProcessor2_0",
    "FusedAttnProcessor2_0",
    "XFormersAttnProcessor",
    "SlicedAttnProcessor",
    "AttnProcessorNPU",
)


def _plain_processors() -> tuple[type, ...]:
    from diffusers.models import attention_processor

    found = (getattr(attention_processor, name, None) for name in _PLAIN_PROCESSOR_NAMES)
    return tuple(cls for cls in found if isinstance(cls, type))


class AttentionStore:
    """Record cross-attention maps and self-attention outputs of selected UNet layers.

    ``attach(unet)`` swaps the processors of the selected layers (only those) for
    [`RecordingAttnProcessor`][zerocon.attention.RecordingAttnProcessor] s through ``unet.set_attn_processor`` and puts the original
    processor objects back on exit, also on exceptions. Each UNet forward overwrites each
    layer's entry, so the store holds one forward's records at a time.

    Records are keyed by layer name: the diffusers processor name without ``".processor"``.
    A layer is hooked if ``selector`` matches it and its kind is recorded (``record_cross`` for
    cross-attention layers, ``record_self`` for self-attention layers).

    Args:
        selector: which layers to record; ``None`` selects every layer.
        record_cross: record cross-attention probabilities ``softmax(QKᵀ/√d)``.
        record_self: record self-attention outputs (after ``to_out``).
        batch_rows: which batch rows to keep (e.g. ``[1]`` for the conditional half of a
            ``[uncond, cond]`` CFG batch); ``None`` keeps all. For cross maps all heads of
            each chosen row are kept, in diffusers' batch-major ``(batch heads)`` layout.
        keep_graph: keep the autograd graph in records (for losses that backpropagate to
            the latent); otherwise records are detached.
        injection: a [`SelfAttentionInjection`][zerocon.attention.SelfAttentionInjection] whose layers are hooked too (recorded or
            injected by its mode, whether or not the store is paused).

    Shape:
        - ``cross_attention[name]``: ``(rows·heads, H·W, L)``; index ``r·heads + h`` is
          the ``r``-th kept row, head ``h``.
        - ``self_attention[name]``: ``(rows, H·W, C)``.

    Raises:
        ValueError: if neither ``record_cross`` nor ``record_self`` is set, or on bad
            ``batch_rows``.
        TypeError: if ``selector`` is not a [`LayerSelector`][zerocon.attention.LayerSelector] or ``batch_rows`` has the
            wrong type.

    Examples:
        >>> import torch
        >>> from zerocon.testing import tiny_unet
        >>> unet = tiny_unet()
        >>> store = AttentionStore(LayerSelector(pattern="mid_block"))
        >>> with store.attach(unet), torch.no_grad():
        ...     _ = unet(torch.randn(1, 4, 8, 8), 10, torch.randn(1, 16, 32))
        >>> tuple(store.cross_attention["mid_block.attentions.0.transformer_blocks.0.attn2"].shape)
        (2, 16, 16)
    """

    def __init__(
        self,
        selector: LayerSelector | None = None,
        record_cross: bool = True,
        record_self: bool = False,
        batch_rows: BatchRows = None,
        keep_graph: bool = False,
        injection: SelfAttentionInjection | None = None,
    ) -> None:
        if selector is None:
            selector = LayerSelector()
        if not isinstance(selector, LayerSelector):
            raise TypeError(f"selector must be a LayerSelector, got {type(selector).__name__}")
        if not (record_cross or record_self):
            raise ValueError("record_cross and record_self are both False: nothing to record")
        self.selector = selector
        self.record_cross = bool(record_cross)
        self.record_self = bool(record_self)
        self.batch_rows = normalize_batch_rows(batch_rows)
        self.keep_graph = bool(keep_graph)
        if injection is not None and not isinstance(injection, SelfAttentionInjection):
            raise TypeError(f"injection must be a SelfAttentionInjection, got {type(injection).__name__}")
        self.injection = injection
        self.enabled = True
        self._cross: dict[str, Tensor] = {}
        self._heads: dict[str, int] = {}
        self._self: dict[str, Tensor] = {}
        self._model: Any | None = None
        self._hooked: tuple[str, ...] = ()
        self._text_hook: Any = None
        self._text_length: int | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(selector={self.selector!r}, record_cross={self.record_cross}, "
            f"record_self={self.record_self}, batch_rows={self.batch_rows!r}, "
            f"keep_graph={self.keep_graph}, attached={self.attached})"
        )

    # ----------------------------------------------------------------- selection
    def layers_to_hook(self, model: Any) -> list[str]:
        """The layer names of ``model`` that [`attach`][zerocon.attention.AttentionStore.attach] would hook, in registry order.

        Args:
            model: a diffusers model with a processor registry.

        Returns:
            Names of the layers the selector matches whose kind is recorded.

        Raises:
            TypeError: if ``model`` has no processor registry.

        Examples:
            >>> from zerocon.testing import tiny_unet
            >>> len(AttentionStore(record_cross=True).layers_to_hook(tiny_unet()))
            4
        """
        return [
            name
            for name, is_cross in attention_layers(model).items()
            if (
                (self.record_cross if is_cross else self.record_self)
                and self.selector.matches(name, is_cross)
            )
            or (not is_cross and self.injection is not None and self.injection.matches(name))
        ]

    # ----------------------------------------------------------------- attaching
    def attach(self, model: Any) -> _Attachment:
        """Hook the selected layers of ``model`` for the duration of a ``with`` block.

        Validation happens now; processors are swapped on entering the block and the
        original processor objects are restored on leaving it (also on exceptions).
        Processors of layers that are not hooked are never touched.

        Args:
            model: a diffusers model with ``attn_processors`` / ``set_attn_processor``.

        Returns:
            A context manager whose ``__enter__`` returns this store.

        Raises:
            TypeError: if ``model`` has no processor registry.
            ValueError: if the selection hooks no layer (listing the available names).
            RuntimeError: (on entering) if this store is already attached, or ``model``
                already carries another store's recording processors.

        Examples:
            >>> from zerocon.testing import tiny_unet
            >>> unet, store = tiny_unet(), AttentionStore()
            >>> with store.attach(unet):
            ...     store.attached
            True
        """
        names = self.layers_to_hook(model)
        if not names:
            available = ", ".join(
                f"{n} ({'cross' if c else 'self'})" for n, c in attention_layers(model).items()
            )
            raise ValueError(
                f"{self.selector!r} with record_cross={self.record_cross}, "
                f"record_self={self.record_self} selects no attention layer of "
                f"{type(model).__name__}; available layers: {available or 'none'}"
            )
        return _Attachment(self, model, tuple(names))

    def _hook(self, model: Any, names: tuple[str, ...]) -> dict[str, Any]:
        if self._model is not None:
            raise RuntimeError(
                f"this AttentionStore is already attached to a {type(self._model).__name__}; "
                "leave the first `with store.attach(...)` block before attaching again"
            )
        registry = processor_registry(model)
        if any(isinstance(p, RecordingAttnProcessor) for p in registry.values()):
            raise RuntimeError(
                f"{type(model).__name__} already carries recording processors of another "
                "AttentionStore; attach one store at a time"
            )
        originals: dict[str, Any] = {}
        replacement = dict(registry)
        plain = _plain_processors()
        modules = dict(model.named_modules()) if hasattr(model, "named_modules") else {}
        for name in names:
            key = name + PROCESSOR_SUFFIX
            if key not in registry:
                raise RuntimeError(f"attention layer {name!r} vanished from the model's registry")
            original = registry[key]
            if not isinstance(original, plain) and not is_joint_attention(modules.get(name)):
                warnings.warn(
                    f"layer {name!r} uses {type(original).__name__}; while recording, "
                    "RecordingAttnProcessor computes plain softmax attention instead",
                    UserWarning,
                    stacklevel=3,
                )
            originals[key] = original
            replacement[key] = self._recorder(modules.get(name), name, original)
        flux = any(isinstance(p, FluxAttentionRecorder) for p in replacement.values())
        model.set_attn_processor(replacement)  # (diffusers empties the dict it is given)
        self._model = model
        self._hooked = names
        if flux:
            # FLUX's single-stream layers do not see the text length: read it off each forward.
            self._text_hook = model.register_forward_pre_hook(self._read_text_length, with_kwargs=True)
        return originals

    def _recorder(self, module: Any, name: str, original: Any) -> Any:
        """The recording processor of one layer: plain, SD3's joint, or FLUX's joint attention."""
        if not is_joint_attention(module):
            return RecordingAttnProcessor(name, self, fallback=original)
        if type(module).__name__ == "FluxAttention":
            return FluxAttentionRecorder(name, self, original, text_length=lambda: self._text_length)
        return JointAttentionRecorder(name, self, original)

    def _read_text_length(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        text = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
        self._text_length = int(text.shape[1]) if isinstance(text, Tensor) else None

    def _unhook(self, model: Any, originals: dict[str, Any]) -> None:
        if self._text_hook is not None:
            self._text_hook.remove()
            self._text_hook = None
        try:
            restored = processor_registry(model)
            restored.update(originals)
            model.set_attn_processor(restored)
        finally:
            self._model = None
            self._hooked = ()

    @property
    def attached(self) -> bool:
        """Whether the store is currently attached to a model."""
        return self._model is not None

    @property
    def hooked_layers(self) -> tuple[str, ...]:
        """Names of the layers hooked by the current attachment (empty when detached)."""
        return self._hooked

    # ----------------------------------------------------------------- recording
    @property
    def cross_attention(self) -> Mapping[str, Float[Tensor, "_rh _p _t"]]:
        """Read-only view: layer name → cross-attention probabilities of the last forward."""
        return MappingProxyType(self._cross)

    @property
    def self_attention(self) -> Mapping[str, Float[Tensor, "_r _p _c"]]:
        """Read-only view: layer name → self-attention output (after ``to_out``), last forward."""
        return MappingProxyType(self._self)

    @property
    def recorded_layers(self) -> tuple[str, ...]:
        """Names of the layers that currently have a record (cross first, then self)."""
        return (*self._cross, *self._self)

    def wants(self, layer: str, is_cross: bool, num_pixels: int) -> bool:
        """Whether a call of ``layer`` should be recorded (the [`AttentionSink`][zerocon.attention.AttentionSink] hook).

        Args:
            layer: the layer name.
            is_cross: whether the call has ``encoder_hidden_states``.
            num_pixels: the query length ``H·W`` of the call.

        Returns:
            ``True`` if enabled, the kind is recorded, and selector and resolution match.
        """
        return (
            self.enabled
            and (self.record_cross if is_cross else self.record_self)
            and self.selector.allows_resolution(num_pixels)
            and self.selector.matches(layer, is_cross)
        )

    def injects(self, layer: str) -> bool:
        """Whether a self-attention call of ``layer`` goes through the injection now."""
        return self.injection is not None and self.injection.active(layer)

    def edit_self_query_key(
        self, layer: str, query: Float[Tensor, "bh n d"], key: Float[Tensor, "bh m d"]
    ) -> tuple[Float[Tensor, "bh n d"], Float[Tensor, "bh m d"]] | None:
        """Hand a self-attention call's queries and keys to the injection (record or replace)."""
        if self.injection is None:
            return None
        return self.injection.exchange(layer, query, key)

    def receive_cross(self, layer: str, probs: Float[Tensor, "bh p t"], heads: int) -> Float[Tensor, "bh p t"] | None:
        """Store cross-attention probabilities (the [`AttentionSink`][zerocon.attention.AttentionSink] hook).

        Args:
            layer: the layer name.
            probs: probabilities in diffusers' ``(batch heads)`` batch-major layout.
            heads: the number of heads.

        Shape:
            - probs: ``(batch·heads, H·W, L)``; stored as ``(rows·heads, H·W, L)``.

        Raises:
            ValueError: if ``batch_rows`` does not fit the batch.

        Returns:
            ``None``: the layer attends with its own maps. A subclass may return a tensor of
            the same shape to make the layer attend with it instead.
        """
        kept = take_batch_rows(probs, self.batch_rows, group=heads)
        self._cross[layer] = kept if self.keep_graph else kept.detach()
        self._heads[layer] = int(heads)
        return None  # keep the computed maps; subclasses may return replacements

    def receive_self(self, layer: str, output: Float[Tensor, "b p c"]) -> None:
        """Store a self-attention output (the [`AttentionSink`][zerocon.attention.AttentionSink] hook).

        Args:
            layer: the layer name.
            output: the attention output after ``to_out``.

        Shape:
            - output: ``(batch, H·W, C)``; stored as ``(rows, H·W, C)``.

        Raises:
            ValueError: if ``batch_rows`` does not fit the batch.
        """
        kept = take_batch_rows(output, self.batch_rows, group=1)
        self._self[layer] = kept if self.keep_graph else kept.detach()

    def snapshot(self, detach: bool | None = None) -> AttentionRecords:
        """Copy the current records into an [`AttentionRecords`][zerocon.attention.AttentionRecords].

        The dictionaries are new, so later forwards do not change the snapshot (the store
        replaces tensors rather than writing into them; tensor storage is shared).

        Args:
            detach: detach the tensors; ``None`` means ``not keep_graph``.

        Returns:
            The records of the last forward.

        Examples:
            >>> AttentionStore().snapshot().layer_names
            ()
        """
        records = AttentionRecords(dict(self._cross), dict(self._self), dict(self._heads))
        if detach is None:
            detach = not self.keep_graph
        return records.detach() if detach else records

    def reset(self) -> None:
        """Drop every record (the attachment, if any, stays)."""
        self._cross.clear()
        self._self.clear()
        self._heads.clear()

    @contextmanager
    def paused(self) -> Iterator[AttentionStore]:
        """Run forwards inside the block without recording (existing records are kept).

        Returns:
            A context manager yielding this store; ``enabled`` is restored on exit.

        Examples:
            >>> store = AttentionStore()
            >>> with store.paused():
            ...     store.enabled
            False
        """
        previous = self.enabled
        self.enabled = False
        try:
            yield self
        finally:
            self.enabled = previous


class _Attachment:
    """Context manager returned by [`attach`][zerocon.attention.AttentionStore.attach]."""

    def __init__(self, store: AttentionStore, model: Any, names: tuple[str, ...]) -> None:
        self._store = store
        self._model = model
        self._names = names
        self._originals: dict[str, Any] | None = None

    def __enter__(self) -> AttentionStore:
        if self._originals is not None:
            raise RuntimeError("this attachment is already active; call store.attach() again")
        self._originals = self._store._hook(self._model, self._names)
        return self._store

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._originals is not None:
            originals, self._originals = self._originals, None
            self._store._unhook(self._model, originals)
