"""Prompt-to-prompt-style access: head counts, per-token aggregation and editable maps."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.attention import (
    AttentionAggregator,
    AttentionRecords,
    AttentionStore,
    LayerSelector,
    aggregate_cross_attention,
)
from zerocon.testing import tiny_components


def _probs(rows: int, heads: int, side: int, tokens: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(rows * heads, side * side, tokens, generator=g), -1)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 3), heads=st.integers(1, 4), tokens=st.integers(1, 6), steps=st.integers(1, 4))
def test_aggregate_is_the_mean_over_layers_heads_and_steps(rows, heads, tokens, steps) -> None:
    records = [
        AttentionRecords({"a": _probs(rows, heads, 4, tokens, 2 * s), "b": _probs(rows, heads, 4, tokens, 2 * s + 1)},
                         {}, {"a": heads, "b": heads})
        for s in range(steps)
    ]
    got = aggregate_cross_attention(records, (4, 4))
    stacked = torch.stack([torch.stack([r.cross_attention[n] for n in "ab"]) for r in records])
    expected = stacked.reshape(steps, 2, rows, heads, 4, 4, tokens).mean(dim=(0, 1, 3)).permute(0, 3, 1, 2)
    torch.testing.assert_close(got, expected)
    # Per-token maps of probabilities: summed over tokens they are 1 everywhere.
    torch.testing.assert_close(got.sum(1), torch.ones(rows, 4, 4))


def test_aggregate_selects_heads_resolutions_and_reports_missing_head_counts() -> None:
    rec = AttentionRecords({"big": _probs(1, 2, 4, 3, 0), "small": _probs(1, 2, 2, 3, 1)}, {}, {"big": 2, "small": 2})
    only_big = aggregate_cross_attention(rec, (4, 4), resize=False)
    torch.testing.assert_close(only_big, aggregate_cross_attention(rec, (4, 4), layers=["big"]))
    head0 = aggregate_cross_attention(rec, (4, 4), layers=["big"], heads=[0])
    torch.testing.assert_close(head0[0], rec.cross_attention["big"][0].T.reshape(3, 4, 4))
    with pytest.raises(ValueError, match="head count"):
        aggregate_cross_attention(AttentionRecords({"x": _probs(1, 2, 4, 3, 0)}), (4, 4))
    with pytest.raises(ValueError, match="out of range"):
        aggregate_cross_attention(rec, (4, 4), heads=[5])
    with pytest.raises(ValueError, match="nothing"):
        AttentionAggregator((4, 4)).result()


def test_store_records_carry_head_counts_and_aggregate_on_a_real_unet() -> None:
    c = tiny_components()
    store = AttentionStore(LayerSelector(kind="cross"))
    with store.attach(c.unet), torch.no_grad():
        c.unet(torch.randn(2, 4, 8, 8), 10, torch.randn(2, 16, 32))
    records = store.snapshot()
    modules = dict(c.unet.named_modules())
    assert records.heads and set(records.heads) == set(records.cross_attention)
    assert all(records.heads[name] == modules[name].heads for name in records.heads)
    maps = aggregate_cross_attention(records, (8, 8))
    assert maps.shape == (2, 16, 8, 8)


class ReplaceWith(AttentionStore):
    """A sink that attends with given maps instead of its own (prompt-to-prompt injection)."""

    def __init__(self, maps: dict[str, torch.Tensor]) -> None:
        super().__init__(LayerSelector(kind="cross"))
        self.maps = maps

    def receive_cross(self, layer, probs, heads):
        super().receive_cross(layer, probs, heads)
        return self.maps.get(layer)


def test_a_sink_that_returns_maps_edits_the_attention() -> None:
    c = tiny_components()
    x, a, b = torch.randn(1, 4, 8, 8), torch.randn(1, 16, 32), torch.randn(1, 16, 32)
    store = AttentionStore(LayerSelector(kind="cross"))
    with torch.no_grad():
        with store.attach(c.unet):
            out_a = c.unet(x, 10, a).sample
        maps_a = dict(store.snapshot().cross_attention)
        with store.attach(c.unet):
            out_b = c.unet(x, 10, b).sample
        maps_b = dict(store.snapshot().cross_attention)
        # Returning a prompt's own maps changes nothing.
        with ReplaceWith(maps_b).attach(c.unet):
            same_b = c.unet(x, 10, b).sample
        # Prompt b attending with a's maps differs from b alone.
        with ReplaceWith(maps_a).attach(c.unet):
            b_with_a = c.unet(x, 10, b).sample
        wrong = ReplaceWith({name: m[:, :, :1] for name, m in maps_a.items()})
        with wrong.attach(c.unet), pytest.raises(ValueError, match="expected"):
            c.unet(x, 10, b)
    torch.testing.assert_close(same_b, out_b, atol=1e-5, rtol=1e-5)
    assert (b_with_a - out_b).abs().max() > 1e-4 and (out_a - out_b).abs().max() > 1e-4
