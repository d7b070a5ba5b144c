"""AttentionStore: attaching, recording, batch rows, graphs, snapshots and errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from diffusers import UNet2DConditionModel
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from zerocon.attention import (
    AttentionStore,
    LayerSelector,
    RecordingAttnProcessor,
    attention_layers,
)
from zerocon.testing import tiny_unet

MID_CROSS = "mid_block.attentions.0.transformer_blocks.0.attn2"
MID_SELF = "mid_block.attentions.0.transformer_blocks.0.attn1"
HEADS = 2  # tiny_unet: attention_head_dim=2 means 2 heads
TOKENS = 16
SIZE = 8


@pytest.fixture
def unet() -> UNet2DConditionModel:
    return tiny_unet(cross_attention_dim=32, sample_size=SIZE)


def _inputs(batch: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    latent = torch.randn(batch, 4, SIZE, SIZE, generator=gen)
    text = torch.randn(batch, TOKENS, 32, generator=gen)
    return latent, text


def _forward(unet: UNet2DConditionModel, latent: Tensor, text: Tensor) -> Tensor:
    return unet(latent, 10, encoder_hidden_states=text).sample


def _channels(name: str) -> int:
    return 64 if name.startswith("mid_block") else 32


def _pixels(name: str) -> int:
    return (SIZE // 2) ** 2 if name.startswith("mid_block") else SIZE**2


def test_records_exactly_the_selected_layers_with_documented_shapes(
    unet: UNet2DConditionModel,
) -> None:
    store = AttentionStore(record_cross=True, record_self=True)
    latent, text = _inputs(2)
    with store.attach(unet), torch.no_grad():
        _forward(unet, latent, text)
    layers = attention_layers(unet)
    assert set(store.cross_attention) == {n for n, c in layers.items() if c}
    assert set(store.self_attention) == {n for n, c in layers.items() if not c}
    for name, probs in store.cross_attention.items():
        assert tuple(probs.shape) == (2 * HEADS, _pixels(name), TOKENS)
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]))
    for name, out in store.self_attention.items():
        assert tuple(out.shape) == (2, _pixels(name), _channels(name))
    assert set(store.recorded_layers) == set(layers)


def test_only_selected_processors_are_replaced_and_originals_come_back(
    unet: UNet2DConditionModel,
) -> None:
    originals = unet.attn_processors
    store = AttentionStore(LayerSelector(pattern="mid_block", kind="cross"))
    with store.attach(unet):
        inside = unet.attn_processors
        assert store.hooked_layers == (MID_CROSS,)
        for key, proc in inside.items():
            if key == MID_CROSS + ".processor":
                assert isinstance(proc, RecordingAttnProcessor) and proc.layer == MID_CROSS
            else:
                assert proc is originals[key]
    assert all(unet.attn_processors[k] is p for k, p in originals.items())
    assert not store.attached and store.hooked_layers == ()


def test_originals_are_restored_after_an_exception(unet: UNet2DConditionModel) -> None:
    originals = unet.attn_processors
    store = AttentionStore(record_self=True)
    with pytest.raises(KeyError, match="boom"), store.attach(unet):
        raise KeyError("boom")
    assert all(unet.attn_processors[k] is p for k, p in originals.items())
    # a failure inside the UNet forward (row 5 of a batch of 1) also restores them
    bad = AttentionStore(batch_rows=[5])
    latent, text = _inputs(1)
    with pytest.raises(ValueError, match="out of range"), bad.attach(unet), torch.no_grad():
        _forward(unet, latent, text)
    assert all(unet.attn_processors[k] is p for k, p in originals.items())
    with store.attach(unet):  # and the store can be attached again
        assert store.attached


def test_attaching_does_not_change_the_output(unet: UNet2DConditionModel) -> None:
    latent, text = _inputs(2)
    with torch.no_grad():
        plain = _forward(unet, latent, text)
        store = AttentionStore(record_cross=True, record_self=True)
        with store.attach(unet):
            hooked = _forward(unet, latent, text)
            with store.paused():
                paused = _forward(unet, latent, text)
    assert torch.allclose(hooked, plain, atol=1e-5)
    assert torch.allclose(paused, plain, atol=1e-5)


def test_batch_rows_selects_the_same_rows_as_a_single_row_run(
    unet: UNet2DConditionModel,
) -> None:
    latent, text = _inputs(2, seed=3)
    full = AttentionStore(record_self=True)
    row1 = AttentionStore(record_self=True, batch_rows=[1])
    last = AttentionStore(record_self=True, batch_rows=slice(1, None))
    single = AttentionStore(record_self=True)
    with torch.no_grad():
        for store, lat, txt in (
            (full, latent, text),
            (row1, latent, text),
            (last, latent, text),
            (single, latent[1:], text[1:]),
        ):
            with store.attach(unet):
                _forward(unet, lat, txt)
    for name in full.cross_attention:
        expected = single.cross_attention[name]
        assert expected.shape[0] == HEADS
        torch.testing.assert_close(row1.cross_attention[name], expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(last.cross_attention[name], expected, atol=1e-5, rtol=1e-4)
        # layout (batch heads), batch-major: row 1 occupies indices HEADS .. 2*HEADS-1
        torch.testing.assert_close(full.cross_attention[name][HEADS:], row1.cross_attention[name])
    for name in full.self_attention:
        torch.testing.assert_close(
            row1.self_attention[name], single.self_attention[name], atol=1e-5, rtol=1e-4
        )
        torch.testing.assert_close(full.self_attention[name][1:], row1.self_attention[name])


def test_keep_graph_backpropagates_to_the_latent(unet: UNet2DConditionModel) -> None:
    latent, text = _inputs(1)
    latent.requires_grad_(True)
    store = AttentionStore(record_self=True, keep_graph=True)
    with store.attach(unet):
        _forward(unet, latent, text)
    loss = sum(r.square().mean() for r in store.cross_attention.values())
    loss = loss + sum(r.square().mean() for r in store.self_attention.values())
    assert isinstance(loss, Tensor)
    loss.backward()
    assert latent.grad is not None
    assert torch.isfinite(latent.grad).all() and latent.grad.abs().sum() > 0
    snap = store.snapshot()
    assert all(t.requires_grad for t in snap.cross_attention.values())
    assert not any(t.requires_grad for t in store.snapshot(detach=True).cross_attention.values())


def test_without_keep_graph_records_are_detached(unet: UNet2DConditionModel) -> None:
    latent, text = _inputs(1)
    latent.requires_grad_(True)
    store = AttentionStore(record_self=True)
    with store.attach(unet):
        _forward(unet, latent, text)
    records = [*store.cross_attention.values(), *store.self_attention.values()]
    assert records and not any(t.requires_grad for t in records)


def test_reset_paused_and_snapshot_independence(unet: UNet2DConditionModel) -> None:
    store = AttentionStore(LayerSelector(pattern="mid_block"), record_self=True)
    with store.attach(unet), torch.no_grad():
        _forward(unet, *_inputs(1, seed=0))
        snap = store.snapshot()
        before = snap.clone()
        assert set(snap.layer_names) == {MID_CROSS, MID_SELF} and len(snap) == 2
        _forward(unet, *_inputs(1, seed=1))
        assert not torch.allclose(store.cross_attention[MID_CROSS], before[MID_CROSS])
        torch.testing.assert_close(snap[MID_CROSS], before[MID_CROSS], atol=0, rtol=0)
        torch.testing.assert_close(snap[MID_SELF], before[MID_SELF], atol=0, rtol=0)
        store.reset()
        assert store.recorded_layers == () and len(store.snapshot()) == 0
        with store.paused():
            _forward(unet, *_inputs(1))
        assert store.recorded_layers == () and store.enabled
    assert store.recorded_layers == ()


def test_resolution_filter_passes_other_layers_through(unet: UNet2DConditionModel) -> None:
    latent, text = _inputs(1)
    low = AttentionStore(LayerSelector(resolutions={(SIZE // 2) ** 2}), record_self=True)
    high = AttentionStore(LayerSelector(resolutions=[SIZE**2]), record_self=True)
    with torch.no_grad():
        plain = _forward(unet, latent, text)
        with low.attach(unet):
            out = _forward(unet, latent, text)
        with high.attach(unet):
            _forward(unet, latent, text)
    assert torch.allclose(out, plain, atol=1e-5)
    assert set(low.recorded_layers) == {MID_CROSS, MID_SELF}
    assert not any(n.startswith("mid_block") for n in high.recorded_layers)
    assert len(high.recorded_layers) == 6


_ALL_LAYERS = list(attention_layers(tiny_unet()))


@settings(max_examples=8, deadline=None)
@given(
    subset=st.sets(st.sampled_from(_ALL_LAYERS), min_size=1),
    kind=st.sampled_from(["cross", "self", "both"]),
)
def test_pattern_and_kind_select_the_expected_layers(subset: set[str], kind: Any) -> None:
    unet = tiny_unet()
    layers = attention_layers(unet)
    pattern = "^(" + "|".join(re.escape(n) for n in sorted(subset)) + ")$"
    selector = LayerSelector(pattern=pattern, kind=kind)
    expected = [
        n for n in _ALL_LAYERS if n in subset and (kind == "both" or layers[n] == (kind == "cross"))
    ]
    assert selector.select(unet) == expected
    store = AttentionStore(selector, record_cross=True, record_self=True)
    if not expected:
        with pytest.raises(ValueError, match="selects no attention layer"):
            store.attach(unet)
        return
    with store.attach(unet), torch.no_grad():
        _forward(unet, *_inputs(1))
    assert sorted(store.recorded_layers) == sorted(expected)


def test_kind_flags_limit_hooked_layers(unet: UNet2DConditionModel) -> None:
    cross_only = AttentionStore()
    self_only = AttentionStore(record_cross=False, record_self=True)
    assert all(n.endswith("attn2") for n in cross_only.layers_to_hook(unet))
    assert all(n.endswith("attn1") for n in self_only.layers_to_hook(unet))
    assert len(cross_only.layers_to_hook(unet)) == len(self_only.layers_to_hook(unet)) == 4


def test_clear_errors(unet: UNet2DConditionModel) -> None:
    store = AttentionStore()
    with pytest.raises(TypeError, match="attn_processors"):
        store.attach(object())
    with pytest.raises(TypeError, match="attn_processors"):
        store.attach(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="selects no attention layer"):
        AttentionStore(LayerSelector(pattern="no_such_layer")).attach(unet)
    with pytest.raises(ValueError, match="selects no attention layer"):
        AttentionStore(LayerSelector(kind="self")).attach(unet)  # self layers, cross recorded
    with pytest.raises(ValueError, match="nothing to record"):
        AttentionStore(record_cross=False)
    with pytest.raises(TypeError, match="LayerSelector"):
        AttentionStore(selector="mid_block")  # type: ignore[arg-type]
    for rows, err in (([], ValueError), ([0, 0], ValueError), ("1", TypeError), ([1.5], TypeError)):
        with pytest.raises(err, match="batch_rows"):
            AttentionStore(batch_rows=rows)  # type: ignore[arg-type]
    originals = unet.attn_processors
    with store.attach(unet):
        with pytest.raises(RuntimeError, match="already attached"), store.attach(unet):
            pass
        with (
            pytest.raises(RuntimeError, match="another AttentionStore"),
            AttentionStore(record_self=True).attach(unet),
        ):
            pass
        assert store.attached
    assert all(unet.attn_processors[k] is p for k, p in originals.items())
    attachment = store.attach(unet)
    with attachment, pytest.raises(RuntimeError, match="already active"), attachment:
        pass
    assert all(unet.attn_processors[k] is p for k, p in originals.items())


def test_unknown_original_processor_warns(unet: UNet2DConditionModel) -> None:
    class Custom:
        def __call__(self, attn: Any, hidden_states: Tensor, **kwargs: Any) -> Tensor:
            from diffusers.models.attention_processor import AttnProcessor2_0

            return AttnProcessor2_0()(attn, hidden_states, **kwargs)

    procs = unet.attn_processors
    procs[MID_CROSS + ".processor"] = Custom()
    unet.set_attn_processor(procs)
    store = AttentionStore(LayerSelector(pattern="mid_block"))
    with pytest.warns(UserWarning, match="Custom"), store.attach(unet):
        pass
    assert isinstance(unet.attn_processors[MID_CROSS + ".processor"], Custom)
