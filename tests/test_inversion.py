"""DDIMInverter, NoiseRegularizer and ε conversion."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.inversion import DDIMInverter, NoiseRegularizer, to_epsilon
from zerocon.losses import auto_correlation_loss, kl_divergence_loss
from zerocon.testing import GaussianDenoiser, tiny_components


@settings(max_examples=40, deadline=None)
@given(alpha=st.floats(0.01, 0.99), seed=st.integers(0, 10_000))
def test_to_epsilon_recovers_noise_for_every_prediction_type(alpha: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    a = torch.tensor(alpha, dtype=torch.float64)
    x0, eps = x0.double(), eps.double()
    xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * x0
    torch.testing.assert_close(to_epsilon(eps, xt, a, "epsilon"), eps)
    torch.testing.assert_close(to_epsilon(v, xt, a, "v_prediction"), eps)
    torch.testing.assert_close(to_epsilon(x0, xt, a, "sample"), eps)


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_to_epsilon_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="prediction_type"):
        to_epsilon(torch.zeros(1), torch.zeros(1), 0.5, "flow")


def _correlated_noise(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(1, 4, 64, 64, generator=g)
    smooth = torch.nn.functional.avg_pool2d(base, 5, stride=1, padding=2)
    return smooth / smooth.std() * 1.3 + 0.2


def test_regularizer_makes_correlated_noise_whiter_and_closer_to_unit_normal() -> None:
    noise = _correlated_noise(0)
    out = NoiseRegularizer()(noise, generator=torch.Generator().manual_seed(1))
    ac_before = auto_correlation_loss(noise, generator=torch.Generator().manual_seed(2))
    ac_after = auto_correlation_loss(out, generator=torch.Generator().manual_seed(2))
    assert ac_after < 0.85 * ac_before
    assert kl_divergence_loss(out) < kl_divergence_loss(noise)
    assert torch.isfinite(out).all()


def test_regularizer_is_deterministic_under_a_generator_and_identity_when_off() -> None:
    noise = _correlated_noise(3)
    reg = NoiseRegularizer()
    a = reg(noise, generator=torch.Generator().manual_seed(7))
    b = reg(noise, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    off = NoiseRegularizer(num_iterations=0)
    assert not off.enabled
    assert torch.equal(off(noise), noise)


@pytest.mark.parametrize("kwargs", [{"lambda_ac": -1.0}, {"num_rolls": 0}, {"num_iterations": -1}])
def test_regularizer_rejects_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        NoiseRegularizer(**kwargs)


@pytest.fixture(scope="module")
def tiny():
    return tiny_components()


def _ddim_sample(unet, scheduler: DDIMScheduler, latents, embeds, steps: int) -> torch.Tensor:
    scheduler.set_timesteps(steps)
    x = latents
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(unet(x, t, embeds).sample, t, x).prev_sample
    return x


@pytest.mark.parametrize(("steps", "tolerance"), [(10, 0.25), (20, 0.12), (50, 0.05), (100, 0.025)])
def test_inversion_then_sampling_returns_to_the_start_latent(tiny, steps: int, tolerance: float) -> None:
    """With an exact denoiser of Gaussian data, inversion + DDIM sampling is a near-identity."""
    g = torch.Generator().manual_seed(0)
    x0 = 0.5 * torch.randn(2, 4, 8, 8, generator=g)
    embeds = torch.randn(2, 16, 32, generator=g)
    model = GaussianDenoiser(tiny.scheduler.alphas_cumprod, data_variance=0.25)
    inverter = DDIMInverter(model, tiny.scheduler, regularizer=NoiseRegularizer(num_iterations=0))
    inverted = inverter.invert(x0, embeds, num_inference_steps=steps, show_progress=False)
    assert inverted.trajectory.shape == (steps + 1, 2, 4, 8, 8)
    assert torch.equal(inverted.trajectory[0], x0)
    assert torch.equal(inverted.trajectory[-1], inverted.latents)
    # Data of variance 0.25 inverts to unit-variance noise.
    assert 0.8 < float(inverted.latents.std()) < 1.25
    recon = _ddim_sample(model, tiny.scheduler, inverted.latents, embeds, steps)
    rel = float((recon - x0).norm() / x0.norm())
    assert rel < tolerance, f"relative reconstruction error {rel:.4f} at {steps} steps"


def test_inversion_error_of_a_random_unet_shrinks_with_more_steps(tiny) -> None:
    """A random tiny UNet is no denoiser, but the DDIM round trip still converges with steps."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 4, 8, 8, generator=g)
    embeds = torch.randn(1, 16, 32, generator=g)
    inverter = DDIMInverter(tiny.unet, tiny.scheduler, regularizer=NoiseRegularizer(num_iterations=0))
    errors = []
    for steps in (10, 100):
        inverted = inverter.invert(x0, embeds, num_inference_steps=steps, show_progress=False)
        recon = _ddim_sample(tiny.unet, tiny.scheduler, inverted.latents, embeds, steps)
        errors.append(float((recon - x0).norm() / x0.norm()))
    assert errors[1] < 0.75 * errors[0], errors


def test_regularized_inversion_still_reconstructs_approximately(tiny) -> None:
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, 4, 8, 8, generator=g)
    embeds = torch.randn(1, 16, 32, generator=g)
    inverter = DDIMInverter(tiny.unet, tiny.scheduler)
    seen: list[int] = []
    out = inverter.invert(
        x0, embeds, num_inference_steps=10, generator=torch.Generator().manual_seed(0),
        callback=lambda i, t, x: seen.append(t), show_progress=False,
    )
    assert seen == sorted(seen) and len(seen) == 10
    assert torch.equal(out.timesteps.flip(0), torch.tensor(seen))
    assert torch.isfinite(out.latents).all()
    # The regulariser changes ε, so the result differs from the unregularised inversion.
    plain = DDIMInverter(tiny.unet, tiny.scheduler, NoiseRegularizer(num_iterations=0))
    assert not torch.allclose(plain.invert(x0, embeds, 10, show_progress=False).latents, out.latents)


def test_inversion_with_cfg_needs_negative_embeddings(tiny) -> None:
    inverter = DDIMInverter(tiny.unet, tiny.scheduler)
    with pytest.raises(ValueError, match="negative_prompt_embeds"):
        inverter.invert(torch.zeros(1, 4, 8, 8), torch.zeros(1, 16, 32), 2, guidance_scale=3.0)
    out = inverter.invert(
        torch.zeros(1, 4, 8, 8), torch.zeros(1, 16, 32), 2, guidance_scale=3.0,
        negative_prompt_embeds=torch.zeros(1, 16, 32), show_progress=False,
    )
    assert torch.isfinite(out.latents).all()


@pytest.mark.usefixtures("unchecked")  # the library's own validation
@pytest.mark.parametrize(
    ("latents", "embeds", "match"),
    [
        (torch.zeros(4, 8, 8), torch.zeros(1, 16, 32), "latents"),
        (torch.zeros(2, 4, 8, 8), torch.zeros(1, 16, 32), "prompt_embeds"),
    ],
)
def test_inversion_rejects_bad_shapes(tiny, latents, embeds, match) -> None:
    with pytest.raises(ValueError, match=match):
        DDIMInverter(tiny.unet, tiny.scheduler).invert(latents, embeds, 2)


def test_inverter_rejects_a_non_scheduler(tiny) -> None:
    with pytest.raises(TypeError, match="scheduler"):
        DDIMInverter(tiny.unet, object())  # type: ignore[arg-type]
