"""Self-attention injection through the AttentionStore's sink."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.attention import AttentionStore, LayerSelector, SelfAttentionInjection
from zerocon.testing import tiny_unet


@pytest.fixture(scope="module")
def unet():
    return tiny_unet().eval()


def _inputs(seed: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 4, 8, 8, generator=g), torch.randn(batch, 16, 32, generator=g)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 1000), batch=st.integers(1, 2))
def test_injecting_a_pass_own_maps_changes_nothing(unet, seed, batch) -> None:
    x, c = _inputs(seed, batch)
    injection = SelfAttentionInjection(r"attn1$")
    store = AttentionStore(LayerSelector(pattern=r"attn2$"), injection=injection)
    with store.attach(unet), torch.no_grad():
        plain = unet(x, 10, c).sample
        with injection.recording():
            recorded = unet(x, 10, c).sample
        with injection.injecting():
            injected = unet(x, 10, c).sample
            doubled = unet(torch.cat([x, x]), 10, torch.cat([c, c])).sample  # CFG-style rows
    assert torch.equal(plain, recorded)
    torch.testing.assert_close(injected, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(doubled[batch:], plain, atol=1e-5, rtol=1e-5)


def test_injection_imposes_the_recorded_layout_and_only_in_its_layers(unet) -> None:
    x, c = _inputs(0)
    other = x.flip(-1)
    injection = SelfAttentionInjection(r"^up_blocks\..*attn1$")
    store = AttentionStore(LayerSelector(pattern=r"attn2$"), injection=injection)
    with store.attach(unet), torch.no_grad():
        with injection.recording():
            unet(x, 10, c)
        free = unet(other, 10, c).sample
        with injection.injecting():
            steered = unet(other, 10, c).sample
    assert not torch.allclose(free, steered)
    assert injection.recorded_layers and all(name.startswith("up_blocks") for name in injection.recorded_layers)


def test_injection_checks_shapes_and_modes() -> None:
    injection = SelfAttentionInjection(r"attn1$")
    with pytest.raises(ValueError, match="mode"):
        injection.set_mode("sometimes")
    with injection.recording():
        injection.exchange("a.attn1", torch.zeros(2, 4, 3), torch.zeros(2, 4, 3))
    with injection.injecting(), pytest.raises(ValueError, match="multiple"):
        injection.exchange("a.attn1", torch.zeros(3, 4, 3), torch.zeros(3, 4, 3))
    assert injection.mode == "off"
    assert injection.exchange("a.attn1", torch.zeros(2, 4, 3), torch.zeros(2, 4, 3)) is None
    with pytest.raises(TypeError):
        AttentionStore(injection="attn1")  # type: ignore[arg-type]
