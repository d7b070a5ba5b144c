"""Feature terms beside PatchNCE: positives-only L2, mean-centred PatchNCE, balanced gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.guidance import FeatureL2Guidance, GuidanceInputs, GuidanceTerm, GuidedScheduler
from zerocon.losses import FeatureL2Loss, PatchNCELoss

seeds = st.integers(0, 10_000)


def _features(seed: int, shape=(2, 16, 8)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=40, deadline=None)
@given(seed=seeds, other=seeds)
def test_feature_l2_is_zero_for_a_copy_and_bounded(seed, other) -> None:
    loss = FeatureL2Loss(num_patches=8, pool_sizes=(1, 2))
    f, g = _features(seed, (1, 8, 4, 4)), _features(other + 1, (1, 8, 4, 4))
    assert float(loss([f], [f], generator=torch.Generator().manual_seed(0))) == pytest.approx(0.0, abs=1e-6)
    value = float(loss([f], [g], generator=torch.Generator().manual_seed(0)))
    assert 0.0 <= value <= 4.0 + 1e-6


@settings(max_examples=30, deadline=None)
@given(seed=seeds, offset=st.floats(-50, 50))
def test_centring_ignores_what_every_location_shares(seed, offset) -> None:
    q, k = _features(seed), _features(seed + 1)
    shared = offset * torch.linspace(-1, 1, 8)
    for loss in (PatchNCELoss(num_patches=8, center=True), FeatureL2Loss(num_patches=8, center=True)):
        plain = loss([q], [k], generator=torch.Generator().manual_seed(1))
        moved = loss([q + shared], [k - shared], generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(plain, moved, atol=1e-4, rtol=1e-4)


def test_centring_lifts_nearly_parallel_features_off_chance() -> None:
    """Features that share a large mean sit at chance under PatchNCE, not once centred."""
    g = torch.Generator().manual_seed(0)
    detail = torch.randn(1, 64, 16, generator=g)
    parallel = 30.0 * torch.ones(1, 1, 16) + detail
    plain = float(PatchNCELoss(num_patches=64)([parallel], [parallel], generator=torch.Generator().manual_seed(0)))
    centred = float(PatchNCELoss(num_patches=64, center=True)([parallel], [parallel],
                                                              generator=torch.Generator().manual_seed(0)))
    assert plain > 0.9 * torch.log(torch.tensor(64.0)).item()
    assert centred < 0.5 * plain


class _Pull(GuidanceTerm):
    def __init__(self, target: float, weight: float = 1.0, balanced: bool = False) -> None:
        super().__init__(weight, name=f"pull{target}", balanced=balanced)
        self.target = target

    def loss(self, inputs: GuidanceInputs) -> torch.Tensor:
        return (inputs.latents - self.target).pow(2).sum()


@settings(max_examples=30, deadline=None)
@given(seed=seeds, weight=st.floats(0.1, 5.0), rows=st.integers(1, 3))
def test_a_balanced_term_moves_by_its_weight_times_the_other_terms(seed, weight, rows) -> None:
    x = _features(seed, (rows, 2, 3, 3))
    plain = GuidedScheduler(object.__new__(type("S", (), {"step": lambda *a: None})), [_Pull(1.0)],
                            step_size=1.0, per_sample=True)
    both = GuidedScheduler(plain.scheduler, [_Pull(1.0), _Pull(-2.0, weight, balanced=True)],
                           step_size=1.0, per_sample=True)
    forward = lambda z: GuidanceInputs(None, latents=z)  # noqa: E731
    base = x - plain.guide(x, forward).latents
    total = x - both.guide(x, forward).latents
    extra = (total - base).flatten(1).norm(dim=1)
    torch.testing.assert_close(extra, weight * base.flatten(1).norm(dim=1), rtol=1e-4, atol=1e-5)


def test_feature_l2_guidance_reads_self_attention_records() -> None:
    from types import SimpleNamespace as R

    f = torch.randn(1, 16, 8, requires_grad=True)
    term = FeatureL2Guidance(weight=2.0, layers=["l"])
    value = term(GuidanceInputs(edit=R(self_attention={"l": f}), reference=R(self_attention={"l": f.detach() + 1})))
    assert value.requires_grad and float(value.detach()) > 0
