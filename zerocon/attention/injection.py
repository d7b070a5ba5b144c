"""``SelfAttentionInjection``: the edit pass attends with the reference pass's self-attention maps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from jaxtyping import Float
from torch import Tensor

from zerocon.attention.selector import LayerSelector

MODES = ("off", "record", "inject")


class SelfAttentionInjection:
    """Plug-and-Play-style injection of self-attention maps, through an attention sink.

    In ``"record"`` mode each hooked self-attention layer hands its queries and keys over and
    they are kept (detached; one forward's worth). In ``"inject"`` mode the layer attends with
    the kept queries and keys instead of its own, so its attention map ``softmax(QKᵀ/√d)`` is
    the recorded pass's while the values (the content) stay the current pass's: the layout of
    the recorded image is imposed, its appearance is not. Batches that are a whole multiple of
    the recorded one (e.g. the ``[uncond, cond]`` rows of classifier-free guidance) get the
    recorded rows repeated. In ``"off"`` mode nothing happens.

    Give it to an [`AttentionStore`][zerocon.attention.AttentionStore] (``injection=``): the store hooks
    the injection's layers too and passes the exchange on. Usable with any sink that offers
    ``injects`` and ``edit_self_query_key`` (see [`AttentionSink`][zerocon.attention.AttentionSink]).

    Args:
        selector: the self-attention layers to inject (a [`LayerSelector`][zerocon.attention.LayerSelector] or a regex).

    Shape:
        - query, key: ``(B·heads, N, d)``, batch-major, as diffusers' ``head_to_batch_dim``.

    Raises:
        ValueError: for an unknown mode, or (in ``"inject"`` mode) a batch that is not a
            multiple of the recorded one or a different layer shape.

    Examples:
        >>> import torch
        >>> injection = SelfAttentionInjection(r"attn1$")
        >>> q, k = torch.randn(2, 16, 8), torch.randn(2, 16, 8)
        >>> with injection.recording():
        ...     injection.exchange("up.attn1", q, k)
        >>> with injection.injecting():
        ...     new_q, new_k = injection.exchange("up.attn1", torch.zeros(4, 16, 8), torch.zeros(4, 16, 8))
        >>> torch.equal(new_q[2:], q), new_k.shape[0]
        (True, 4)
    """

    def __init__(self, selector: LayerSelector | str) -> None:
        if isinstance(selector, str):
            selector = LayerSelector(pattern=selector, kind="self")
        if not isinstance(selector, LayerSelector):
            raise TypeError(f"selector must be a LayerSelector or a regex, got {type(selector).__name__}")
        self.selector = selector
        self.mode = "off"
        self._saved: dict[str, tuple[Tensor, Tensor]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(selector={self.selector!r}, mode={self.mode!r})"

    def matches(self, layer: str) -> bool:
        """Whether ``layer`` (a self-attention layer name) is injected."""
        return self.selector.matches(layer, False)

    def active(self, layer: str) -> bool:
        """Whether a call of ``layer`` should exchange its queries and keys now."""
        return self.mode != "off" and self.matches(layer)

    @property
    def recorded_layers(self) -> tuple[str, ...]:
        """The layers with kept queries and keys."""
        return tuple(self._saved)

    def set_mode(self, mode: str) -> None:
        """Switch to ``"off"``, ``"record"`` or ``"inject"``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        self.mode = mode

    @contextmanager
    def _in(self, mode: str) -> Iterator[SelfAttentionInjection]:
        previous = self.mode
        self.set_mode(mode)
        try:
            yield self
        finally:
            self.mode = previous

    def recording(self) -> AbstractContextManager[SelfAttentionInjection]:
        """``with injection.recording():`` keeps the queries and keys of the forwards inside."""
        return self._in("record")

    def injecting(self) -> AbstractContextManager[SelfAttentionInjection]:
        """``with injection.injecting():`` forwards inside attend with the kept ones."""
        return self._in("inject")

    def saved(self) -> dict[str, tuple[Float[Tensor, "_ _ _"], Float[Tensor, "_ _ _"]]]:
        """A copy of what is kept (layer → queries and keys), e.g. one per step."""
        return dict(self._saved)

    def restore(self, saved: dict[str, tuple[Float[Tensor, "_ _ _"], Float[Tensor, "_ _ _"]]]) -> None:
        """Keep ``saved`` (from [`saved`][zerocon.attention.SelfAttentionInjection.saved]) instead of what is kept now."""
        self._saved = dict(saved)

    def clear(self) -> None:
        """Drop what was kept."""
        self._saved.clear()

    def exchange(
        self, layer: str, query: Float[Tensor, "bh n d"], key: Float[Tensor, "bh m d"]
    ) -> tuple[Float[Tensor, "bh n d"], Float[Tensor, "bh m d"]] | None:
        """Record or replace one call's queries and keys (``None``: keep them).

        Raises:
            ValueError: in ``"inject"`` mode, for rows that are not a multiple of the recorded
                rows or for a different number of locations or channels.
        """
        if not self.active(layer):
            return None
        if self.mode == "record":
            self._saved[layer] = (query.detach(), key.detach())
            return None
        saved = self._saved.get(layer)
        if saved is None:
            return None
        saved_query, saved_key = saved
        rows, recorded = int(query.shape[0]), int(saved_query.shape[0])
        if rows % recorded or saved_query.shape[1:] != query.shape[1:] or saved_key.shape[1:] != key.shape[1:]:
            raise ValueError(
                f"layer {layer!r}: cannot inject queries/keys of shape {tuple(saved_query.shape)} into a "
                f"call of shape {tuple(query.shape)} (rows must be a multiple, locations and channels equal)"
            )
        repeat = rows // recorded
        if repeat > 1:
            saved_query, saved_key = saved_query.repeat(repeat, 1, 1), saved_key.repeat(repeat, 1, 1)
        return saved_query.to(query.dtype), saved_key.to(key.dtype)
