"""Prompt-to-prompt-style aggregation of cross-attention records into per-token maps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float
from torch import Tensor

from zerocon.attention.records import AttentionRecords


def _side(pixels: int, aspect: float) -> tuple[int, int]:
    height = round(math.sqrt(pixels / aspect))
    if height < 1 or pixels % height:
        raise ValueError(f"cannot lay {pixels} locations out with aspect ratio {aspect}")
    return height, pixels // height


class AttentionAggregator:
    """Running average of per-token cross-attention maps over layers, heads and steps.

    Each [`add`][zerocon.guidance.LocalBlend.add] folds one forward's records into a running sum at ``size``; memory stays
    one ``(rows, tokens, h, w)`` tensor however many steps are added.

    Args:
        size: ``(h, w)`` of the output maps.
        layers: layer names to use (default: every recorded cross-attention layer).
        heads: head indices to average (default: all).
        resize: bilinearly resize layers of other resolutions to ``size`` (default). With
            ``False`` only layers already at ``size`` are used, as prompt-to-prompt does.
        aspect: width / height of the latent (to lay non-square maps out).

    Shape:
        - records' ``cross_attention[name]``: ``(rows·heads, h_l·w_l, tokens)``.
        - [`result`][zerocon.attention.AttentionAggregator.result]: ``(rows, tokens, h, w)``.

    Raises:
        ValueError: (from [`add`][zerocon.guidance.LocalBlend.add]) for a record without its head count, a head index out
            of range, or no layer to use.

    Examples:
        >>> rec = AttentionRecords({"l": torch.full((4, 16, 3), 1 / 3)}, {}, {"l": 2})
        >>> agg = AttentionAggregator((4, 4))
        >>> agg.add(rec); agg.add(rec)
        >>> agg.result().shape, agg.count
        (torch.Size([2, 3, 4, 4]), 2)
    """

    def __init__(
        self,
        size: tuple[int, int],
        layers: Sequence[str] | None = None,
        heads: Sequence[int] | None = None,
        resize: bool = True,
        aspect: float = 1.0,
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.layers = list(layers) if layers is not None else None
        self.heads = list(heads) if heads is not None else None
        self.resize = resize
        self.aspect = aspect
        self._sum: Tensor | None = None
        self.count = 0

    def _maps(self, records: AttentionRecords) -> list[Tensor]:
        names = self.layers if self.layers is not None else list(records.cross_attention)
        maps = []
        for name in names:
            if name not in records.cross_attention:
                raise ValueError(f"no cross-attention record for layer {name!r}")
            if name not in records.heads:
                raise ValueError(f"the record of {name!r} carries no head count")
            probs = records.cross_attention[name]
            heads = records.heads[name]
            per_head = rearrange(probs, "(r n) p t -> r n p t", n=heads)
            if self.heads is not None:
                if max(self.heads) >= heads or min(self.heads) < 0:
                    raise ValueError(f"head indices {self.heads} out of range for {heads} heads")
                per_head = per_head[:, self.heads]
            h, w = _side(per_head.shape[2], self.aspect)
            if (h, w) != self.size and not self.resize:
                continue
            mean = rearrange(per_head.mean(1), "r (h w) t -> r t h w", h=h, w=w)
            if (h, w) != self.size:
                mean = F.interpolate(mean.float(), size=self.size, mode="bilinear", align_corners=False)
            maps.append(mean.float())
        if not maps:
            raise ValueError(f"no recorded cross-attention layer at {self.size} (resize=False)")
        return maps

    def add(self, records: AttentionRecords) -> None:
        """Fold one forward's records in (detached)."""
        maps = self._maps(records)
        layer_mean = torch.stack([m.detach() for m in maps]).mean(0)
        self._sum = layer_mean if self._sum is None else self._sum + layer_mean
        self.count += 1

    def result(self) -> Float[Tensor, "r t h w"]:
        """The average so far.

        Raises:
            ValueError: if nothing was added.
        """
        if self._sum is None:
            raise ValueError("nothing to aggregate: add() records first")
        return self._sum / self.count


def aggregate_cross_attention(
    records: AttentionRecords | Iterable[AttentionRecords],
    size: tuple[int, int],
    layers: Sequence[str] | None = None,
    heads: Sequence[int] | None = None,
    resize: bool = True,
    aspect: float = 1.0,
) -> Float[Tensor, "r t h w"]:
    """Per-token maps averaged over layers, heads and (for a sequence of records) steps.

    Args:
        records: one forward's records, or several (e.g. one per step).
        size: ``(h, w)`` of the output maps.
        layers: layer names to use (default: every recorded cross-attention layer).
        heads: head indices to average (default: all).
        resize: resize layers of other resolutions to ``size`` (default) or skip them.
        aspect: width / height of the latent.

    Shape:
        - output: ``(rows, tokens, h, w)``; each map of a token is a mean of probabilities.

    Raises:
        ValueError: see [`AttentionAggregator`][zerocon.attention.AttentionAggregator].

    Examples:
        >>> rec = AttentionRecords({"l": torch.full((2, 64, 5), 0.2)}, {}, {"l": 2})
        >>> aggregate_cross_attention(rec, (8, 8)).shape
        torch.Size([1, 5, 8, 8])
    """
    aggregator = AttentionAggregator(size, layers, heads, resize, aspect)
    for record in [records] if isinstance(records, AttentionRecords) else records:
        aggregator.add(record)
    return aggregator.result()
