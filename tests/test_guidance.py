"""GuidedScheduler and guidance terms, alone and in a hand-written sampling loop."""

from __future__ import annotations

import warnings

import pytest
import torch
from diffusers import DDIMScheduler
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.attention import AttentionStore, LayerSelector
from zerocon.guidance import (
    CrossAttentionGuidance,
    GuidanceInputs,
    GuidanceTerm,
    GuidedScheduler,
    NonFiniteGuidanceWarning,
    PatchNCEGuidance,
)
from zerocon.testing import tiny_components


class PullToward(GuidanceTerm):
    """A loss that prefers a known latent."""

    def __init__(self, target: torch.Tensor, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.register_buffer("target", target)

    def loss(self, inputs: GuidanceInputs) -> torch.Tensor:
        assert inputs.latents is not None
        return (inputs.latents - self.target).pow(2).sum()


class ReturnsNaN(GuidanceTerm):
    def loss(self, inputs: GuidanceInputs) -> torch.Tensor:
        assert inputs.latents is not None
        return inputs.latents.sum() * float("nan")


def _identity_forward(x: torch.Tensor) -> GuidanceInputs:
    return GuidanceInputs(edit=None, latents=x)


def _scheduler() -> DDIMScheduler:
    return DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), step_size=st.floats(0.01, 0.45))
def test_guide_moves_the_latent_toward_the_preferred_one(seed: int, step_size: float) -> None:
    g = torch.Generator().manual_seed(seed)
    target, x = torch.randn(1, 4, 4, 4, generator=g), torch.randn(1, 4, 4, 4, generator=g)
    guided = GuidedScheduler(_scheduler(), [PullToward(target)], step_size=step_size)
    result = guided.guide(x, _identity_forward)
    assert not result.skipped
    assert (result.latents - target).norm() < (x - target).norm()
    # Gradient of |x - y|² is 2(x - y): the move is exact.
    torch.testing.assert_close(result.latents, x - step_size * 2 * (x - target))
    assert result.losses == {"PullToward": pytest.approx(float((x - target).pow(2).sum()), rel=1e-5)}


def test_guided_step_then_scheduler_step_equals_manual_composition() -> None:
    g = torch.Generator().manual_seed(0)
    target, x = torch.randn(1, 4, 4, 4, generator=g), torch.randn(1, 4, 4, 4, generator=g)
    guided = GuidedScheduler(_scheduler(), [PullToward(target)], step_size=0.1)
    guided.set_timesteps(10)
    t = guided.timesteps[3]
    out = guided.guided_step(x, t, _identity_forward, noise_fn=lambda z: 0.5 * z)
    moved = x - 0.1 * 2 * (x - target)
    expected = _scheduler()
    expected.set_timesteps(10)
    torch.testing.assert_close(out.prev_sample, expected.step(0.5 * moved, t, moved).prev_sample)
    torch.testing.assert_close(out.guidance.latents, moved)


def test_gradient_clipping_bounds_the_move() -> None:
    target, x = torch.full((2, 4, 4, 4), 100.0), torch.zeros(2, 4, 4, 4)
    guided = GuidedScheduler(_scheduler(), [PullToward(target)], step_size=0.5, max_grad_norm=1.0)
    result = guided.guide(x, _identity_forward)
    per_sample = (result.latents - x).flatten(1).norm(dim=1)
    torch.testing.assert_close(per_sample, torch.full((2,), 0.5))
    assert result.grad_norm > 1.0  # reported before clipping


def test_non_finite_guidance_is_skipped_with_a_warning() -> None:
    x = torch.randn(1, 4, 4, 4)
    guided = GuidedScheduler(_scheduler(), [ReturnsNaN()], step_size=0.1)
    with pytest.warns(NonFiniteGuidanceWarning, match="not moved"):
        result = guided.guide(x, _identity_forward)
    assert result.skipped
    assert torch.equal(result.latents, x)


def test_no_terms_or_zero_step_leaves_the_latent_alone() -> None:
    x = torch.randn(1, 4, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(GuidedScheduler(_scheduler()).guide(x, _identity_forward).latents, x)
        zero = GuidedScheduler(_scheduler(), [PullToward(torch.zeros_like(x))], step_size=0.0)
        assert torch.equal(zero.guide(x, _identity_forward).latents, x)


def test_a_loss_that_ignores_the_latent_is_reported() -> None:
    class Constant(GuidanceTerm):
        def loss(self, inputs: GuidanceInputs) -> torch.Tensor:
            return torch.tensor(1.0)

    guided = GuidedScheduler(_scheduler(), [Constant()], step_size=0.1)
    with pytest.raises(ValueError, match="does not depend on the latent"):
        guided.guide(torch.zeros(1, 4, 2, 2), _identity_forward)


def test_pass_through_matches_the_wrapped_scheduler() -> None:
    guided, plain = GuidedScheduler(_scheduler()), _scheduler()
    guided.set_timesteps(7)
    plain.set_timesteps(7)
    assert torch.equal(guided.timesteps, plain.timesteps)
    assert guided.config == plain.config
    x, eps = torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4)
    t = plain.timesteps[2]
    assert torch.equal(guided.step(eps, t, x).prev_sample, plain.step(eps, t, x).prev_sample)
    assert torch.equal(guided.scale_model_input(x, t), x)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"step_size": -1.0}, ValueError), ({"max_grad_norm": 0.0}, ValueError)],
)
def test_bad_settings_are_rejected(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        GuidedScheduler(_scheduler(), **kwargs)
    with pytest.raises(TypeError, match="step"):
        GuidedScheduler(object())


def test_attention_terms_need_reference_records() -> None:
    from types import SimpleNamespace

    edit = SimpleNamespace(cross_attention={"l": torch.rand(2, 4, 3)}, self_attention={})
    with pytest.raises(ValueError, match="reference"):
        CrossAttentionGuidance()(GuidanceInputs(edit=edit))
    with pytest.raises(ValueError, match="self_attention"):
        PatchNCEGuidance()(GuidanceInputs(edit=edit, reference=edit))


def test_hand_written_sampling_loop_with_attention_guidance() -> None:
    """The ~10-line loop shown in docs/guidance.md, on a tiny UNet."""
    c = tiny_components()
    unet, g = c.unet, torch.Generator().manual_seed(0)
    x_T = torch.randn(1, 4, 8, 8, generator=g)
    source, target = torch.randn(1, 16, 32, generator=g), torch.randn(1, 16, 32, generator=g)

    store = AttentionStore(LayerSelector(pattern="up_blocks"), record_self=True, keep_graph=True)
    guided = GuidedScheduler(c.scheduler, [CrossAttentionGuidance(1.0), PatchNCEGuidance(1.0)], step_size=0.1)
    guided.set_timesteps(4)
    x_ref, x_edit, losses = x_T, x_T, []
    with store.attach(unet):
        for t in guided.timesteps:
            with torch.no_grad():  # reference pass: records this step's maps
                x_ref = guided.step(unet(x_ref, t, source).sample, t, x_ref).prev_sample
            ref = store.snapshot(detach=True)

            def forward(x, t=t, ref=ref):
                unet(x, t, target)
                return GuidanceInputs(edit=store.snapshot(), reference=ref, generator=g)

            def noise(x, t=t):
                with store.paused():
                    return unet(x, t, target).sample

            out = guided.guided_step(x_edit, t, forward, noise)
            x_edit = out.prev_sample
            losses.append(out.guidance.losses)

    assert len(losses) == 4
    assert all(set(step) == {"CrossAttentionGuidance", "PatchNCEGuidance"} for step in losses)
    assert all(v > 0 for step in losses for v in step.values())
    assert torch.isfinite(x_edit).all()
    # Guidance changed the trajectory relative to the unguided edit.
    guided.step_size = 0.0
    x_plain = x_T
    with torch.no_grad():
        for t in guided.timesteps:
            x_plain = guided.step(unet(x_plain, t, target).sample, t, x_plain).prev_sample
    assert not torch.allclose(x_plain, x_edit)


def test_cross_attention_guidance_reduces_its_own_loss_on_a_tiny_unet() -> None:
    """One guided move at a fixed timestep lowers the cross-attention L2 (a real descent step)."""
    c = tiny_components()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 8, 8, generator=g)
    source, target = torch.randn(1, 16, 32, generator=g), torch.randn(1, 16, 32, generator=g)
    store = AttentionStore(LayerSelector(pattern="attn2"), keep_graph=True)
    term = CrossAttentionGuidance(1.0)
    guided = GuidedScheduler(c.scheduler, [term], step_size=0.05)
    t = torch.tensor(500)
    with store.attach(c.unet):
        with torch.no_grad():
            c.unet(x, t, source)
        ref = store.snapshot(detach=True)

        def forward(z):
            c.unet(z, t, target)
            return GuidanceInputs(edit=store.snapshot(), reference=ref)

        before = guided.guide(x, forward)
        after = guided.guide(before.latents, forward)
    assert after.loss < before.loss


def _records(features: dict[str, torch.Tensor]):
    from types import SimpleNamespace

    return SimpleNamespace(self_attention=features, cross_attention={})


@pytest.mark.parametrize(
    ("latent_size", "layer_sizes"),
    [
        ((8, 12), [(8, 12), (4, 6)]),  # not a perfect square: the square guess cannot pool it
        ((4, 16), [(4, 16), (2, 8)]),  # 64 and 16 are squares: the guess pools wrong neighbours
    ],
)
def test_patch_nce_guidance_reshapes_non_square_features_from_the_latent(
    latent_size: tuple[int, int], layer_sizes: list[tuple[int, int]]
) -> None:
    from einops import rearrange

    from zerocon.losses import PatchNCELoss

    g = torch.Generator().manual_seed(0)
    maps_q = [torch.randn(2, 6, h, w, generator=g) for h, w in layer_sizes]
    maps_k = [torch.randn(2, 6, h, w, generator=g) for h, w in layer_sizes]
    names = [f"up_blocks.{i}.attn1" for i in range(len(layer_sizes))]
    tokens = lambda m: rearrange(m, "b c h w -> b (h w) c")  # noqa: E731
    loss = PatchNCELoss(num_patches=8, pool_sizes=(1, 2))
    term = PatchNCEGuidance(1.0, loss, layers=names)
    inputs = GuidanceInputs(
        edit=_records({n: tokens(m) for n, m in zip(names, maps_q, strict=True)}),
        reference=_records({n: tokens(m) for n, m in zip(names, maps_k, strict=True)}),
        latents=torch.zeros(2, 4, *latent_size),
        generator=torch.Generator().manual_seed(5),
    )
    expected = loss(maps_q, maps_k, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(term(inputs), expected, rtol=0, atol=0)


def test_patch_nce_guidance_rejects_a_layer_that_fits_no_factor() -> None:
    features = {"l": torch.randn(1, 7, 4)}
    inputs = GuidanceInputs(
        edit=_records(features), reference=_records(features), latents=torch.zeros(1, 4, 8, 12)
    )
    with pytest.raises(ValueError, match=r"'l'.*7 locations.*8x12"):
        PatchNCEGuidance()(inputs)


def test_spatial_size_exact_and_rounded_up_factors() -> None:
    from zerocon.guidance.attention_terms import spatial_size

    assert spatial_size((64, 96), 64 * 96) == (64, 96)
    assert spatial_size((64, 96), 16 * 24) == (16, 24)
    assert spatial_size((32, 128), 8 * 32) == (8, 32)
    assert spatial_size((15, 23), 8 * 12) == (8, 12)  # stride-2 convolutions round odd sides up
    with pytest.raises(ValueError, match="no downsampling factor"):
        spatial_size((8, 12), 50)


def test_cross_attention_guidance_names_an_unrecorded_layer() -> None:
    from types import SimpleNamespace

    records = SimpleNamespace(cross_attention={"recorded": torch.rand(2, 4, 3)})
    term = CrossAttentionGuidance(layers=["recorded", "not_recorded"])
    with pytest.raises(ValueError, match="not_recorded"):
        term(GuidanceInputs(edit=records, reference=records))


@pytest.mark.parametrize("per_sample", [False, True])
def test_guide_reads_the_device_once_per_step(monkeypatch, per_sample) -> None:
    """Losses stay tensors until one transfer: on a GPU every other read would stall the step."""
    reads = []
    for name in ("__float__", "__bool__", "item", "tolist", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    target = torch.zeros(2, 4, 8, 8)
    guided = GuidedScheduler(DDIMScheduler(), [PullToward(target), PullToward(target + 1, weight=0.5)],
                             step_size=0.1, per_sample=per_sample)
    latents = torch.ones(2, 4, 8, 8)
    reads.clear()
    result = guided.guide(latents, lambda x: GuidanceInputs(edit=None, latents=x), steer=lambda preview: [1.0, 0.5] if per_sample else 0.5)
    assert reads == ["tolist"], reads
    assert not result.skipped and result.loss > 0 and not torch.equal(result.latents, latents)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6, allow_subnormal=True) | st.sampled_from([1e-50, 0.1, 1 / 3]),
                       min_size=1, max_size=3),
       default=st.sampled_from([torch.float32, torch.float64]),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]))
def test_steer_factors_are_reported_as_the_tensor_holds_them(values, default, dtype) -> None:
    from zerocon.guidance.guided_scheduler import _rounded

    previous = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        assert _rounded(values, dtype) == torch.tensor(values).to(dtype).tolist()
    finally:
        torch.set_default_dtype(previous)
