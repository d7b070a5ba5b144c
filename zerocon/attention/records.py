"""``AttentionRecords``: one forward pass's recorded attention maps and features."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor


@dataclass
class AttentionRecords:
    """Recorded attention of one UNet forward pass, keyed by layer name.

    Layer names are diffusers processor names without ``".processor"``, e.g.
    ``"up_blocks.1.attentions.0.transformer_blocks.0.attn2"``.

    Args:
        cross_attention: layer name → cross-attention probabilities ``softmax(QKᵀ/√d)``.
        self_attention: layer name → self-attention output after ``to_out`` (before any
            residual connection and output rescaling of the attention module).
        heads: layer name → number of attention heads of each cross-attention record (so
            ``(rows·heads)`` can be split; see [`aggregate_cross_attention`][zerocon.attention.aggregate_cross_attention]).

    Shape:
        - cross_attention values: ``(rows·heads, H·W, L)``, rows-major (row ``r``, head ``h``
          at index ``r·heads + h``), summing to 1 over the last axis.
        - self_attention values: ``(rows, H·W, C)``.

    Examples:
        >>> rec = AttentionRecords({"a.attn2": torch.full((2, 4, 3), 1 / 3)}, {})
        >>> len(rec), rec.layer_names
        (1, ('a.attn2',))
    """

    cross_attention: dict[str, Float[Tensor, "_rh _p _t"]] = field(default_factory=dict)
    self_attention: dict[str, Float[Tensor, "_r _p _c"]] = field(default_factory=dict)
    heads: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        """Number of recorded tensors (cross plus self)."""
        return len(self.cross_attention) + len(self.self_attention)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names of all recorded layers: cross-attention layers first, then self-attention.

        Returns:
            A tuple of layer names in recording order.
        """
        return (*self.cross_attention, *self.self_attention)

    def detach(self) -> AttentionRecords:
        """Return records whose tensors are detached from the autograd graph.

        Returns:
            A new ``AttentionRecords`` (tensors share storage with these ones).

        Examples:
            >>> AttentionRecords({"x": torch.ones(1, 1, 1, requires_grad=True)}).detach()[
            ...     "x"].requires_grad
            False
        """
        return AttentionRecords(
            {k: v.detach() for k, v in self.cross_attention.items()},
            {k: v.detach() for k, v in self.self_attention.items()},
            dict(self.heads),
        )

    def clone(self) -> AttentionRecords:
        """Return records with copied tensors (``Tensor.clone``; the graph is kept).

        Returns:
            A new ``AttentionRecords`` that shares no storage with this one.

        Examples:
            >>> rec = AttentionRecords({"x": torch.zeros(1, 1, 1)})
            >>> rec.clone()["x"] is rec["x"]
            False
        """
        return AttentionRecords(
            {k: v.clone() for k, v in self.cross_attention.items()},
            {k: v.clone() for k, v in self.self_attention.items()},
            dict(self.heads),
        )

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> AttentionRecords:
        """Move / cast every tensor (``Tensor.to``; differentiable).

        Args:
            device: target device, or ``None`` to keep each tensor's device.
            dtype: target floating dtype, or ``None`` to keep each tensor's dtype.

        Returns:
            A new ``AttentionRecords``.

        Examples:
            >>> AttentionRecords({"x": torch.zeros(1, 1, 1)}).to(dtype=torch.float64)["x"].dtype
            torch.float64
        """
        return AttentionRecords(
            {k: v.to(device=device, dtype=dtype) for k, v in self.cross_attention.items()},
            {k: v.to(device=device, dtype=dtype) for k, v in self.self_attention.items()},
            dict(self.heads),
        )

    def rows(self, start: int, stop: int) -> AttentionRecords:
        """The records of batch rows ``start`` to ``stop - 1`` (views; the graph is kept).

        A cross-attention record ``(rows·heads, H·W, L)`` is cut at ``start·heads`` and
        ``stop·heads``; a self-attention record ``(rows, H·W, C)`` at ``start`` and ``stop``.

        Args:
            start: the first row.
            stop: one past the last row.

        Returns:
            A new ``AttentionRecords`` of ``stop - start`` rows.

        Raises:
            ValueError: for an empty or out-of-range span, or a cross-attention record whose
                number of heads is unknown.

        Examples:
            >>> rec = AttentionRecords({"x": torch.zeros(6, 4, 3)}, {"y": torch.zeros(3, 4, 8)}, {"x": 2})
            >>> part = rec.rows(1, 2)
            >>> tuple(part["x"].shape), tuple(part["y"].shape)
            ((2, 4, 3), (1, 4, 8))
        """
        if not 0 <= start < stop:
            raise ValueError(f"rows({start}, {stop}) is an empty or negative span")
        cross = {}
        for name, value in self.cross_attention.items():
            if name not in self.heads:
                raise ValueError(f"the number of heads of {name!r} is unknown; cannot split its rows")
            heads = self.heads[name]
            if stop * heads > value.shape[0]:
                raise ValueError(f"{name!r} has {value.shape[0] // heads} rows; asked for rows {start}..{stop - 1}")
            cross[name] = value[start * heads : stop * heads]
        self_attention = {}
        for name, value in self.self_attention.items():
            if stop > value.shape[0]:
                raise ValueError(f"{name!r} has {value.shape[0]} rows; asked for rows {start}..{stop - 1}")
            self_attention[name] = value[start:stop]
        return AttentionRecords(cross, self_attention, dict(self.heads))

    def __getitem__(self, name: str) -> Tensor:
        """Look a layer up in ``cross_attention`` first, then in ``self_attention``.

        Args:
            name: a layer name (``".processor"`` suffix tolerated).

        Returns:
            The recorded tensor.

        Raises:
            KeyError: if no record has this name.
        """
        key = name.removesuffix(".processor")
        if key in self.cross_attention:
            return self.cross_attention[key]
        if key in self.self_attention:
            return self.self_attention[key]
        raise KeyError(f"no record for layer {key!r}; recorded: {list(self.layer_names)}")
