"""RecordingAttnProcessor reproduces diffusers' stock attention and reports what it computes."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0
from torch import Tensor

from zerocon.attention import RecordingAttnProcessor


class ListSink:
    """A minimal AttentionSink that keeps every record it receives."""

    def __init__(self, want: bool = True) -> None:
        self.want = want
        self.calls: list[tuple[str, bool, int]] = []
        self.cross: list[tuple[str, Tensor, int]] = []
        self.self_out: list[tuple[str, Tensor]] = []

    def wants(self, layer: str, is_cross: bool, num_pixels: int) -> bool:
        self.calls.append((layer, is_cross, num_pixels))
        return self.want

    def receive_cross(self, layer: str, probs: Tensor, heads: int) -> None:
        self.cross.append((layer, probs, heads))

    def receive_self(self, layer: str, output: Tensor) -> None:
        self.self_out.append((layer, output))


def _cross_attn() -> Attention:
    torch.manual_seed(0)
    return Attention(
        query_dim=8, cross_attention_dim=6, heads=2, dim_head=4, cross_attention_norm="layer_norm"
    ).eval()


def test_cross_attention_matches_stock_processor_and_records_probabilities() -> None:
    attn = _cross_attn()
    x, ctx = torch.randn(3, 5, 8), torch.randn(3, 7, 6)
    mask = torch.zeros(3, 1, 7)
    mask[:, :, -2:] = -10_000.0
    sink = ListSink()
    with torch.no_grad():
        expected = AttnProcessor()(attn, x, ctx, attention_mask=mask)
        got = RecordingAttnProcessor("L", sink)(attn, x, ctx, attention_mask=mask)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert sink.calls == [("L", True, 5)]
    assert not sink.self_out
    ((layer, probs, heads),) = sink.cross
    assert (layer, heads, tuple(probs.shape)) == ("L", 2, (3 * 2, 5, 7))
    torch.testing.assert_close(probs.sum(-1), torch.ones(6, 5))
    assert probs[..., -2:].abs().max() < 1e-6  # masked tokens get no attention


def test_self_attention_4d_with_norms_residual_and_rescale_matches_stock() -> None:
    torch.manual_seed(1)
    attn = Attention(
        query_dim=32,
        heads=2,
        dim_head=4,
        norm_num_groups=4,
        spatial_norm_dim=3,
        residual_connection=True,
        rescale_output_factor=2.0,
    ).eval()
    x, temb = torch.randn(2, 32, 3, 4), torch.randn(2, 3, 3, 4)
    sink = ListSink()
    with torch.no_grad():
        expected = AttnProcessor()(attn, x, temb=temb)
        got = RecordingAttnProcessor("S", sink)(attn, x, temb=temb)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert sink.calls == [("S", False, 12)]
    ((layer, out),) = sink.self_out
    assert layer == "S" and tuple(out.shape) == (2, 12, 32)
    # The record is the output after to_out: undo rescale and residual to compare.
    torch.testing.assert_close(
        out, (expected * 2.0 - x).flatten(2).transpose(1, 2), atol=1e-5, rtol=1e-5
    )


def test_unwanted_calls_go_to_the_fallback_unchanged() -> None:
    attn = _cross_attn()
    x, ctx = torch.randn(1, 5, 8), torch.randn(1, 7, 6)
    seen: list[dict[str, object]] = []

    def fallback(attn: Attention, hidden_states: Tensor, **kwargs: object) -> Tensor:
        seen.append(kwargs)
        return AttnProcessor2_0()(attn, hidden_states, **kwargs)  # type: ignore[arg-type]

    sink = ListSink(want=False)
    with torch.no_grad():
        got = RecordingAttnProcessor("L", sink, fallback=fallback)(attn, x, ctx)
        expected = AttnProcessor()(attn, x, ctx)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert len(seen) == 1 and seen[0]["encoder_hidden_states"] is ctx
    assert not sink.cross and not sink.self_out


def test_unwanted_calls_without_fallback_still_compute_attention() -> None:
    attn = _cross_attn()
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        got = RecordingAttnProcessor("L", ListSink(want=False))(attn, x, torch.randn(2, 7, 6))
    assert got.shape == x.shape and torch.isfinite(got).all()


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_bad_sink_and_fallback_raise_type_error() -> None:
    with pytest.raises(TypeError, match="sink must implement"):
        RecordingAttnProcessor("L", object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fallback"):
        RecordingAttnProcessor("L", ListSink(), fallback=3)
