"""Flow-matching inversion: exact for a constant velocity, diffusers' Euler loop when run
downwards, first and second order as claimed, one model call per step for the second order."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.inversion import FlowMatchInverter

SCHEDULERS = {
    "sd3 (static shift)": lambda: FlowMatchEulerDiscreteScheduler(shift=3.0),
    "flux (dynamic shift)": lambda: FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096),
}
MU = {"sd3 (static shift)": None, "flux (dynamic shift)": 0.8}


@pytest.fixture(scope="module")
def transformer():
    """A tiny random SD3 transformer (built from a config; nothing is downloaded)."""
    torch.manual_seed(0)
    model = SD3Transformer2DModel(sample_size=8, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8,
                                  num_attention_heads=2, caption_projection_dim=16, joint_attention_dim=16,
                                  pooled_projection_dim=16, out_channels=4).eval()
    conditioning = (torch.randn(1, 5, 16, generator=torch.Generator().manual_seed(1)),
                    torch.randn(1, 16, generator=torch.Generator().manual_seed(2)))

    def velocity(x, timestep, c):
        return model(hidden_states=x, encoder_hidden_states=c[0], pooled_projections=c[1], timestep=timestep).sample

    return velocity, conditioning


@settings(max_examples=20, deadline=None)
@given(order=st.sampled_from([1, 2]), steps=st.integers(1, 30), scheduler=st.sampled_from(sorted(SCHEDULERS)),
       value=st.floats(-3, 3))
def test_a_constant_velocity_round_trips_exactly(order, steps, scheduler, value) -> None:
    inverter = FlowMatchInverter(lambda x, t, c: torch.full_like(x, value), SCHEDULERS[scheduler](), order=order)
    x0 = torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(steps))
    out = inverter.invert(x0, None, steps, mu=MU[scheduler], show_progress=False)
    top = float(out.sigmas[-1])
    torch.testing.assert_close(out.latents, x0 + top * value, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(inverter.sample(out.latents, None, steps, mu=MU[scheduler]), x0, atol=1e-5, rtol=1e-5)
    assert out.trajectory.shape == (steps + 1, 2, 4, 3, 3) and float(out.sigmas[0]) == 0.0


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_euler_sampling_is_diffusers_scheduler_loop(transformer, name) -> None:
    velocity, conditioning = transformer
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    scheduler = SCHEDULERS[name]()
    ours = FlowMatchInverter(velocity, SCHEDULERS[name]()).sample(noise, conditioning, 6, mu=MU[name])
    kwargs = {"mu": MU[name]} if MU[name] is not None else {}
    scheduler.set_timesteps(6, **kwargs)
    x = noise
    with torch.no_grad():
        for t in scheduler.timesteps:  # diffusers' own loop, as its SD3 pipeline runs it (no CFG)
            x = scheduler.step(velocity(x, t.expand(1), conditioning), t, x).prev_sample
    torch.testing.assert_close(ours, x, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_measured_convergence_order(transformer, name) -> None:
    """Round-trip error (invert, then sample back) at 10, 20, 40 steps: about 1 for Euler, ≥ 1.5 for order 2."""
    velocity, conditioning = transformer
    x0 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    measured = {}
    for order in (1, 2):
        inverter = FlowMatchInverter(velocity, SCHEDULERS[name](), order=order)
        errors = []
        for steps in (10, 20, 40):
            noise = inverter.invert(x0, conditioning, steps, mu=MU[name], show_progress=False).latents
            errors.append(float((inverter.sample(noise, conditioning, steps, mu=MU[name]) - x0).abs().mean()))
        measured[order] = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(0.8 <= o <= 1.3 for o in measured[1]), measured
    assert all(o >= 1.5 for o in measured[2]), measured


def test_the_second_order_costs_one_call_per_step_after_the_first() -> None:
    calls = []

    def velocity(x, t, c):
        calls.append(float(t[0]))
        return -x

    FlowMatchInverter(velocity, FlowMatchEulerDiscreteScheduler(), order=2).invert(
        torch.ones(1, 1, 2, 2), None, 8, show_progress=False)
    assert len(calls) == 8 + 1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="order must be 1"):
        FlowMatchInverter(lambda x, t, c: x, FlowMatchEulerDiscreteScheduler(), order=3)
    inverter = FlowMatchInverter(lambda x, t, c: x, FlowMatchEulerDiscreteScheduler())
    with pytest.raises(ValueError, match="num_inference_steps must be >= 1"):
        inverter.invert(torch.ones(1, 4, 2, 2), None, 0, show_progress=False)
