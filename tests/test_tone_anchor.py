"""The tone anchor: loss, gradient and guidance term."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.guidance import GuidanceInputs, ToneAnchorGuidance
from zerocon.losses import tone_anchor_loss

seeds = st.integers(0, 10_000)


def _maps(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 8, 8, generator=g), (torch.rand(2, 1, 8, 8, generator=g) > 0.4).float()


@settings(max_examples=40, deadline=None)
@given(seed=seeds, pool=st.sampled_from([1, 3, 5]))
def test_gradient_is_zero_when_the_statistics_match(seed, pool) -> None:
    x, mask = _maps(seed)
    image = x.clone().requires_grad_(True)
    loss = tone_anchor_loss(image, x, mask, pool)
    (grad,) = torch.autograd.grad(loss, image)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-10)
    assert float(grad.abs().max()) == pytest.approx(0.0, abs=1e-10)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, shift=st.floats(0.05, 3.0))
def test_a_tone_shift_is_caught_only_inside_the_mask(seed, shift) -> None:
    x, mask = _maps(seed)
    shifted_inside = x + shift * mask
    shifted_outside = x + shift * (1 - mask)
    assert float(tone_anchor_loss(shifted_inside, x, mask, 1)) > 0
    assert float(tone_anchor_loss(shifted_outside, x, mask, 1)) == pytest.approx(0.0, abs=1e-9)
    # A descent step on the loss brings the tone back.
    image = shifted_inside.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(tone_anchor_loss(image, x, mask, 3), image)
    after = (shifted_inside - 0.05 * grad).detach()
    assert float(tone_anchor_loss(after, x, mask, 3)) < float(tone_anchor_loss(shifted_inside, x, mask, 3))


def test_fine_detail_is_free_but_the_mean_is_not() -> None:
    x = torch.zeros(1, 1, 8, 8)
    checker = (torch.arange(8).view(-1, 1) + torch.arange(8)).remainder(2).float().view(1, 1, 8, 8) * 2 - 1
    mask = torch.ones(1, 1, 8, 8)
    # A zero-mean texture finer than the window costs far less than a shift of the same size.
    assert float(tone_anchor_loss(x + checker, x, mask, 5)) < 0.2 * float(tone_anchor_loss(x + 1.0, x, mask, 5))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"pool": 2}, "pool"), ({"pool": 0}, "pool"),
    ({"mask": torch.full((1, 1, 4, 4), 2.0)}, r"\[0, 1\]"),
    ({"mask": torch.ones(1, 2, 4, 4)}, "mask"),
    ({"reference": torch.zeros(1, 4, 2, 2)}, "shape"),
])
def test_bad_inputs_raise(kwargs, message, unchecked) -> None:
    args = {"image": torch.zeros(1, 4, 4, 4), "reference": torch.zeros(1, 4, 4, 4), "mask": torch.ones(1, 1, 4, 4),
            "pool": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        tone_anchor_loss(**args)


def test_the_term_needs_predictions_and_is_zero_without_a_mask() -> None:
    x = torch.randn(1, 4, 4, 4, requires_grad=True)
    term = ToneAnchorGuidance(weight=3.0)
    with pytest.raises(ValueError, match="pred_x0"):
        term(GuidanceInputs(None, latents=x))
    free = term(GuidanceInputs(None, latents=x, pred_x0=x * 2, source_x0=torch.zeros(1, 4, 4, 4)))
    assert float(free.detach()) == 0.0 and free.requires_grad
    held = term(GuidanceInputs(None, pred_x0=x + 1, source_x0=x.detach(), keep_mask=torch.ones(1, 1, 4, 4)))
    assert float(held.detach()) == pytest.approx(3.0 * 8.0)
