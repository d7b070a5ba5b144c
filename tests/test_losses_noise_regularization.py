"""Tests for zerocon.losses: auto_correlation_loss, sample_roll_shift and kl_divergence_loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.losses import auto_correlation_loss, kl_divergence_loss, sample_roll_shift


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _reference_auto_correlation(noise: torch.Tensor, seed: int, min_size: int) -> torch.Tensor:
    """Loop-and-torch.roll version with the documented draw order (one randint per level)."""
    generator = _gen(seed)
    b, c, _, _ = noise.shape
    maps = noise.reshape(b * c, 1, *noise.shape[2:])
    total = noise.new_zeros(())
    while True:
        side = min(maps.shape[2], maps.shape[3])
        if side // 2 <= 1:
            shifts = [1] * (b * c)
        else:
            shifts = torch.randint(1, side // 2, (b * c,), generator=generator).tolist()
        for m, shift in enumerate(shifts):
            x = maps[m, 0]
            total = total + (x * torch.roll(x, shift, dims=0)).mean() ** 2
            total = total + (x * torch.roll(x, shift, dims=1)).mean() ** 2
        if side <= min_size:
            break
        maps = F.avg_pool2d(maps, 2)
    return total


# ---------------------------------------------------------------- sample_roll_shift


@settings(max_examples=50, deadline=None)
@given(size=st.integers(2, 512), seed=st.integers(0, 2**31 - 1))
def test_roll_shift_is_never_zero_and_below_half_the_side(size: int, seed: int) -> None:
    generator = _gen(seed)
    for _ in range(20):
        shift = sample_roll_shift(size, generator)
        assert shift >= 1
        assert shift < size / 2 or shift == 1


def test_roll_shift_covers_its_range_and_small_sides_give_one() -> None:
    generator = _gen(0)
    assert {sample_roll_shift(10, generator) for _ in range(200)} == {1, 2, 3, 4}
    assert [sample_roll_shift(s) for s in (1, 2, 3, 4, 5)] == [1, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="size must be an integer >= 1"):
        sample_roll_shift(0)


# ---------------------------------------------------------------- auto_correlation_loss


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 2),
    c=st.integers(1, 3),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    min_size=st.integers(1, 8),
    seed=st.integers(0, 2**31 - 1),
)
def test_auto_correlation_matches_loop_reference(
    b: int, c: int, h: int, w: int, min_size: int, seed: int
) -> None:
    noise = torch.randn(b, c, h, w, generator=_gen(seed + 1), dtype=torch.float64)
    expected = _reference_auto_correlation(noise, seed, min_size)
    torch.testing.assert_close(auto_correlation_loss(noise, _gen(seed), min_size), expected)


def test_auto_correlation_pyramid_stops_at_min_size() -> None:
    # A constant map gives mean(x * roll(x))^2 = x^4 per roll at every level: 2 per level.
    ones = torch.ones(1, 1, 64, 64)
    assert float(auto_correlation_loss(ones, _gen(0))) == 2.0 * 4  # levels 64, 32, 16, 8
    assert float(auto_correlation_loss(ones, _gen(0), min_size=16)) == 2.0 * 3
    assert float(auto_correlation_loss(torch.ones(2, 3, 8, 8), _gen(0))) == 2.0 * 6  # one level


def test_auto_correlation_same_seed_same_loss() -> None:
    noise = torch.randn(1, 4, 32, 32, generator=_gen(0))
    first = auto_correlation_loss(noise, _gen(5))
    assert torch.equal(first, auto_correlation_loss(noise, _gen(5)))
    draws = {float(auto_correlation_loss(noise, _gen(seed))) for seed in range(6)}
    assert len(draws) > 1  # the shifts really are random


def test_white_noise_scores_far_below_smooth_noise() -> None:
    white = torch.randn(1, 4, 64, 64, generator=_gen(0))
    blurred = white
    for _ in range(8):
        blurred = F.avg_pool2d(blurred, 5, stride=1, padding=2, count_include_pad=False)
    blurred = blurred / blurred.std()  # same variance as white noise, but correlated
    constant = torch.ones(1, 4, 64, 64)
    white_loss = float(auto_correlation_loss(white, _gen(1)))
    assert white_loss < 0.05
    assert float(auto_correlation_loss(blurred, _gen(1))) > 10 * white_loss
    assert float(auto_correlation_loss(constant, _gen(1))) > 100 * white_loss


def test_auto_correlation_gradients_are_finite_and_descend() -> None:
    noise = torch.randn(1, 4, 32, 32, generator=_gen(0)) + 0.5
    noise.requires_grad_()
    loss = auto_correlation_loss(noise, _gen(1))
    loss.backward()
    assert noise.grad is not None and torch.isfinite(noise.grad).all()
    with torch.no_grad():
        stepped = noise - 0.5 * noise.grad
    assert float(auto_correlation_loss(stepped, _gen(1))) < float(loss.detach())


def test_auto_correlation_half_precision_is_computed_in_float32() -> None:
    noise = torch.randn(1, 2, 16, 16, generator=_gen(0))
    loss = auto_correlation_loss(noise.bfloat16(), _gen(1))
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, auto_correlation_loss(noise, _gen(1)), atol=1e-3, rtol=0.1)


@pytest.mark.usefixtures("unchecked")  # the library's own validation
@pytest.mark.parametrize(
    ("noise", "kwargs", "match"),
    [
        (torch.randn(4, 8, 8), {}, r"shape \(b, c, h, w\)"),
        (torch.randn(1, 0, 8, 8), {}, "non-empty"),
        (torch.randn(1, 4, 8, 8), {"min_size": 0}, "min_size"),
        (torch.zeros(1, 4, 8, 8, dtype=torch.long), {}, "floating-point"),
    ],
)
def test_auto_correlation_rejects_bad_inputs(noise: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        auto_correlation_loss(noise, **kwargs)


# ---------------------------------------------------------------- kl_divergence_loss


def test_kl_is_about_zero_for_standard_normal_and_larger_otherwise() -> None:
    sample = torch.randn(4, 64, 64, generator=_gen(0), dtype=torch.float64)
    assert abs(float(kl_divergence_loss(sample))) < 1e-3
    noise = (sample - sample.mean()) / sample.std()  # exactly mean 0, variance 1
    assert abs(float(kl_divergence_loss(noise))) < 1e-6
    assert float(kl_divergence_loss(noise + 1.0)) == pytest.approx(1.0, abs=1e-6)  # + mean^2
    scaled = float(kl_divergence_loss(2.0 * noise))
    assert scaled == pytest.approx(4 - 1 - math.log(4), abs=1e-6)
    assert float(kl_divergence_loss(0.5 * noise)) == pytest.approx(
        0.25 - 1 - math.log(0.25), abs=1e-6
    )


@settings(max_examples=25, deadline=None)
@given(mean=st.floats(-3, 3), std=st.floats(0.1, 3), seed=st.integers(0, 2**31 - 1))
def test_kl_matches_closed_form_and_is_non_negative(mean: float, std: float, seed: int) -> None:
    noise = mean + std * torch.randn(2048, generator=_gen(seed), dtype=torch.float64)
    var, mu = noise.var(), noise.mean()
    expected = var + mu**2 - 1 - torch.log(var + 1e-7)
    loss = kl_divergence_loss(noise)
    torch.testing.assert_close(loss, expected)
    assert float(loss) >= -1e-6


def test_kl_gradients_are_finite() -> None:
    noise = (3.0 * torch.randn(1, 4, 16, 16, generator=_gen(0)) + 1.0).requires_grad_()
    kl_divergence_loss(noise).backward()
    assert noise.grad is not None and torch.isfinite(noise.grad).all()
    constant = torch.zeros(1, 4, 8, 8, requires_grad=True)  # var 0: the 1e-7 keeps it finite
    loss = kl_divergence_loss(constant)
    loss.backward()
    assert (
        torch.isfinite(loss) and constant.grad is not None and torch.isfinite(constant.grad).all()
    )


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_kl_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="at least 2 elements"):
        kl_divergence_loss(torch.ones(1))
    with pytest.raises(ValueError, match="floating-point"):
        kl_divergence_loss(torch.ones(4, dtype=torch.long))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_correlation_on_cuda_with_cpu_generator_matches_cpu() -> None:
    noise = torch.randn(1, 4, 32, 32, generator=_gen(0))
    cpu = auto_correlation_loss(noise, _gen(1))
    cuda = auto_correlation_loss(noise.cuda(), _gen(1))
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(auto_correlation_loss(noise.cuda()))  # default CUDA generator


# ----------------------------------------------------------------- closed-form gradients
from hypothesis import given as _given  # noqa: E402
from hypothesis import settings as _settings  # noqa: E402
from hypothesis import strategies as _st  # noqa: E402

from zerocon.inversion import NoiseRegularizer  # noqa: E402
from zerocon.losses import auto_correlation_grad, kl_divergence_grad  # noqa: E402


@_settings(max_examples=40, deadline=None)
@_given(b=_st.integers(1, 2), c=_st.integers(1, 4), h=_st.integers(1, 40), w=_st.integers(1, 40),
        seed=_st.integers(0, 2**16), min_size=_st.integers(1, 10))
def test_closed_form_gradients_equal_autograd(b, c, h, w, seed, min_size) -> None:
    x = torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    (expected,) = torch.autograd.grad(auto_correlation_loss(x, torch.Generator().manual_seed(seed), min_size), x)
    got = auto_correlation_grad(x.detach(), torch.Generator().manual_seed(seed), min_size)
    # On tiny maps one gradient element can be the near-cancelling sum of terms as large as the
    # largest element (about 12 at 1×3): its float32 rounding is a few ulp of those terms, so the
    # absolute tolerance scales with them (b=2, c=2, h=1, w=3, seed=665 is off by 1.8e-7).
    torch.testing.assert_close(got, expected, atol=1e-6 * max(1.0, float(expected.abs().max())), rtol=1e-5)
    if x.numel() >= 2:
        (expected_kl,) = torch.autograd.grad(kl_divergence_loss(x), x)
        torch.testing.assert_close(kl_divergence_grad(x.detach()), expected_kl, atol=1e-6, rtol=1e-5)


def _autograd_regularizer(eps, generator, lam_ac=20.0, lam_kl=20.0, iterations=5, rolls=5):
    """The regulariser as it was written with autograd (the reference)."""
    eps = eps.detach()
    for _ in range(iterations):
        for _ in range(rolls):
            if not torch.isfinite(eps).all():
                return eps  # diverged (the losses refuse non-finite input)
            var = eps.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(auto_correlation_loss(var, generator=generator), var)
            eps = eps - lam_ac * grad / rolls
        if not torch.isfinite(eps).all():
            return eps
        var = eps.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(kl_divergence_loss(var), var)
        eps = eps - lam_kl * grad
    return eps


@_settings(max_examples=15, deadline=None)
@_given(side=_st.sampled_from([8, 15, 16, 32, 64]), seed=_st.integers(0, 2**16), scale=_st.floats(0.2, 3.0))
def test_the_closed_form_regularizer_matches_the_autograd_one(side, seed, scale) -> None:
    """Both forms are the same function; only their float rounding differs.

    With λ = 20 the iteration is unstable for small, strongly correlated maps (it can go to NaN),
    and there it multiplies any rounding difference by a large gain. So the two are compared in
    float64 and the tolerance is the rounding error the iteration can amplify: the gain is
    measured by nudging the input, and a case whose gain cannot be measured (the iteration
    diverges) is checked only for diverging alike.
    """
    eps = scale * torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    eps = eps + torch.roll(eps, 1, dims=2)  # correlated, so the regulariser has work to do
    got = NoiseRegularizer()(eps, generator=torch.Generator().manual_seed(seed))
    expected = _autograd_regularizer(eps, torch.Generator().manual_seed(seed))
    assert got.dtype == torch.float64
    if not torch.isfinite(expected).all():
        assert not torch.isfinite(got).all()  # diverged in both
        return
    nudge = 1e-9
    nudged = _autograd_regularizer(eps * (1 + nudge), torch.Generator().manual_seed(seed))
    gain = float((nudged - expected).abs().max()) / (nudge * float(eps.abs().max()))
    if not math.isfinite(gain):
        return  # at the edge of divergence: no rounding bound exists
    # float64 rounding (2.2e-16 per operation, a few hundred operations per element) times the gain.
    tolerance = 1e-12 + 1e-13 * max(gain, 1.0) * float(eps.abs().max())
    torch.testing.assert_close(got, expected, atol=tolerance, rtol=0.0)


def test_closed_form_gradient_of_maps_too_large_for_the_index_table_equals_autograd() -> None:
    x = torch.randn(1, 2, 80, 72, generator=torch.Generator().manual_seed(5), requires_grad=True)
    (expected,) = torch.autograd.grad(auto_correlation_loss(x, torch.Generator().manual_seed(6)), x)
    got = auto_correlation_grad(x.detach(), torch.Generator().manual_seed(6))
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=1e-5)
