"""Tests for zerocon.losses: patch_nce_loss, PatchSampler and PatchNCELoss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.losses import PatchNCELoss, PatchSampler, patch_nce_loss


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _reference_patch_nce(query: torch.Tensor, key: torch.Tensor, tau: float) -> torch.Tensor:
    """Independent per-image cross-entropy over q·kᵀ/τ, shape (b, n)."""
    rows = []
    for q, k in zip(query, key, strict=True):
        logits = q @ k.T / tau
        rows.append(F.cross_entropy(logits, torch.arange(q.shape[0]), reduction="none"))
    return torch.stack(rows)


# ---------------------------------------------------------------- patch_nce_loss


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 3),
    n=st.integers(1, 12),
    c=st.integers(1, 8),
    tau=st.floats(0.03, 2.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_patch_nce_matches_cross_entropy_over_similarity_logits(
    b: int, n: int, c: int, tau: float, seed: int
) -> None:
    query, key = _randn(b, n, c, seed=seed), _randn(b, n, c, seed=seed + 1)
    expected = _reference_patch_nce(query, key, tau)
    torch.testing.assert_close(patch_nce_loss(query, key, tau, reduction="none"), expected)
    torch.testing.assert_close(patch_nce_loss(query, key, tau), expected.mean())
    torch.testing.assert_close(patch_nce_loss(query, key, tau, reduction="sum"), expected.sum())


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 16), c=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_patch_nce_invariant_to_common_permutation_of_locations(n: int, c: int, seed: int) -> None:
    query, key = _randn(2, n, c, seed=seed), _randn(2, n, c, seed=seed + 7)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    per_location = patch_nce_loss(query, key, reduction="none")
    permuted = patch_nce_loss(query[:, perm], key[:, perm], reduction="none")
    torch.testing.assert_close(permuted, per_location[:, perm])
    torch.testing.assert_close(
        patch_nce_loss(query[:, perm], key[:, perm]), patch_nce_loss(query, key)
    )


@pytest.mark.parametrize("n", [4, 16, 32])
def test_patch_nce_near_floor_for_identical_orthonormal_features(n: int) -> None:
    rows, _ = torch.linalg.qr(_randn(64, 64, seed=n))  # orthonormal columns
    features = rows.T[:n].unsqueeze(0)  # (1, n, 64), orthonormal rows
    loss = patch_nce_loss(features, features.clone(), temperature=0.07)
    # Exact value: log(1 + (n - 1) * exp(-1 / 0.07)) ~ (n - 1) * 6e-7.
    assert float(loss) == pytest.approx(math.log1p((n - 1) * math.exp(-1 / 0.07)), rel=1e-6)
    assert float(loss) < 1e-4 < math.log(n)


def test_patch_nce_random_features_cost_about_log_n() -> None:
    n = 64
    query = F.normalize(_randn(4, n, 32, seed=0), dim=-1)
    key = F.normalize(_randn(4, n, 32, seed=1), dim=-1)
    loss = patch_nce_loss(query, key, temperature=1.0)
    assert abs(float(loss) - math.log(n)) < 0.1


def test_patch_nce_no_gradient_reaches_key() -> None:
    query = _randn(2, 8, 4, seed=0).requires_grad_()
    key = _randn(2, 8, 4, seed=1).requires_grad_()
    patch_nce_loss(query, key).backward()
    assert key.grad is None
    assert query.grad is not None and torch.isfinite(query.grad).all()
    assert query.grad.abs().sum() > 0


def test_patch_nce_two_dimensional_input_is_one_image() -> None:
    query, key = _randn(8, 4, seed=0), _randn(8, 4, seed=1)
    per_location = patch_nce_loss(query, key, reduction="none")
    assert per_location.shape == (8,)
    torch.testing.assert_close(
        per_location, patch_nce_loss(query[None], key[None], reduction="none")[0]
    )


def test_patch_nce_half_precision_is_computed_in_float32() -> None:
    query = _randn(1, 8, 4, seed=0, dtype=torch.float32)
    key = _randn(1, 8, 4, seed=1, dtype=torch.float32)
    loss = patch_nce_loss(query.bfloat16(), key.bfloat16())
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, patch_nce_loss(query, key), atol=0.1, rtol=0.05)


@pytest.mark.usefixtures("unchecked")  # the library's own validation
@pytest.mark.parametrize(
    ("query", "key", "kwargs", "match"),
    [
        (torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5), {}, "shape \\(b, n, c\\)"),
        (torch.randn(2, 3, 4), torch.randn(2, 3, 5), {}, "same shape"),
        (torch.randn(2, 0, 4), torch.randn(2, 0, 4), {}, "at least one location"),
        (torch.randn(2, 3, 4), torch.randn(2, 3, 4), {"temperature": 0.0}, "temperature"),
        (torch.randn(2, 3, 4), torch.randn(2, 3, 4), {"temperature": -1.0}, "temperature"),
        (torch.randn(2, 3, 4), torch.randn(2, 3, 4), {"reduction": "avg"}, "reduction"),
        (torch.ones(2, 3, 4, dtype=torch.long), torch.randn(2, 3, 4), {}, "floating-point"),
    ],
)
def test_patch_nce_rejects_bad_inputs(
    query: torch.Tensor, key: torch.Tensor, kwargs: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        patch_nce_loss(query, key, **kwargs)


# ---------------------------------------------------------------- PatchSampler


@pytest.mark.parametrize(("channels", "mlp_dim"), [((8,), 16), ((3, 5, 7), 4)])
def test_sampler_heads_are_eager_with_expected_parameter_count(
    channels: tuple[int, ...], mlp_dim: int
) -> None:
    sampler = PatchSampler(channels=channels, use_mlp=True, mlp_dim=mlp_dim, pool_sizes=(1, 2))
    assert len(sampler.heads) == len(channels)  # one head per layer, shared by scales
    for c, head in zip(channels, sampler.heads, strict=True):
        count = sum(p.numel() for p in head.parameters())
        assert count == c * mlp_dim + mlp_dim + mlp_dim * mlp_dim + mlp_dim
    assert sum(p.numel() for p in PatchSampler(channels=channels).parameters()) == 0


def test_sampler_same_seed_same_ids_and_given_ids_are_reused() -> None:
    features = [_randn(2, 64, 8, seed=0), _randn(2, 16, 3, seed=1)]
    sampler = PatchSampler(num_patches=10)
    _, ids_a = sampler(features, generator=torch.Generator().manual_seed(3))
    _, ids_b = sampler(features, generator=torch.Generator().manual_seed(3))
    _, ids_c = sampler(features, generator=torch.Generator().manual_seed(4))
    for a, b in zip(ids_a, ids_b, strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, c) for a, c in zip(ids_a, ids_c, strict=True))

    others = [_randn(2, 64, 8, seed=5), _randn(2, 16, 3, seed=6)]
    samples, ids_again = sampler(
        others, patch_ids=ids_a, generator=torch.Generator().manual_seed(9)
    )
    for feature, ids, reused, sample in zip(others, ids_a, ids_again, samples, strict=True):
        assert torch.equal(ids, reused)
        torch.testing.assert_close(
            sample, F.normalize(feature[:, ids], dim=-1, eps=0.0), atol=1e-6, rtol=1e-6
        )


@settings(max_examples=30, deadline=None)
@given(
    side=st.integers(1, 9),
    num_patches=st.integers(1, 100),
    seed=st.integers(0, 2**31 - 1),
)
def test_sampler_draws_distinct_in_range_ids(side: int, num_patches: int, seed: int) -> None:
    feature = _randn(2, 3, side, side, seed=seed)
    samples, ids = PatchSampler(num_patches=num_patches)(
        [feature], generator=torch.Generator().manual_seed(seed)
    )
    locations = side * side
    assert ids[0].dtype == torch.long
    assert ids[0].shape == (min(num_patches, locations),)
    assert ids[0].unique().numel() == ids[0].numel()
    assert int(ids[0].min()) >= 0 and int(ids[0].max()) < locations
    assert samples[0].shape == (2, min(num_patches, locations), 3)


@pytest.mark.parametrize("use_mlp", [False, True])
def test_sampler_outputs_are_unit_norm(use_mlp: bool) -> None:
    torch.manual_seed(0)  # head initialisation only
    sampler = PatchSampler(channels=[6, 4], num_patches=8, use_mlp=use_mlp, mlp_dim=12)
    features = [
        _randn(3, 36, 6, seed=0, dtype=torch.float32),
        _randn(3, 4, 4, 4, seed=1, dtype=torch.float32),
    ]
    samples, _ = sampler(features, generator=torch.Generator().manual_seed(0))
    for sample, channels in zip(samples, (6, 4), strict=True):
        assert sample.shape == (3, 8, 12 if use_mlp else channels)
        torch.testing.assert_close(sample.norm(dim=-1), torch.ones(sample.shape[:2]))


def test_sampler_multi_scale_returns_pooled_entries_per_layer() -> None:
    grid = _randn(2, 5, 8, 8, seed=0)
    tokens = grid.flatten(2).transpose(1, 2)  # (b, h*w, c)
    sampler = PatchSampler(num_patches=1000, pool_sizes=(1, 2))
    samples, ids = sampler([tokens, grid], generator=torch.Generator().manual_seed(0))
    assert len(samples) == len(ids) == 4  # layer-major: (layer0, p1), (layer0, p2), ...
    assert [s.shape[1] for s in samples] == [64, 16, 64, 16]
    pooled = F.avg_pool2d(grid, 2).flatten(2).transpose(1, 2)
    torch.testing.assert_close(samples[1], F.normalize(pooled[:, ids[1]], dim=-1, eps=0.0))
    # token and grid layouts of the same map give the same samples at the same ids
    again, _ = sampler([grid, tokens], patch_ids=ids)
    torch.testing.assert_close(again[0], F.normalize(tokens[:, ids[0]], dim=-1, eps=0.0))
    torch.testing.assert_close(again[3], F.normalize(pooled[:, ids[3]], dim=-1, eps=0.0))


def test_sampler_uses_same_ids_for_every_image_of_the_batch() -> None:
    feature = _randn(1, 16, 4, seed=0).expand(3, 16, 4)
    samples, _ = PatchSampler(num_patches=5)([feature], generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(samples[0][0], samples[0][2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"use_mlp": True}, "channels is required"),
        ({"num_patches": 0}, "num_patches"),
        ({"mlp_dim": 0}, "mlp_dim"),
        ({"pool_sizes": ()}, "pool_sizes"),
        ({"pool_sizes": (1, 0)}, "pool_sizes"),
        ({"channels": []}, "channels"),
        ({"channels": [4, -1]}, "channels"),
    ],
)
def test_sampler_rejects_bad_constructor_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PatchSampler(**kwargs)


def test_sampler_rejects_bad_features_and_ids() -> None:
    sampler = PatchSampler(num_patches=4, pool_sizes=(1, 2))
    square = [torch.randn(1, 16, 3)]
    with pytest.raises(ValueError, match="non-empty sequence"):
        sampler([])
    with pytest.raises(ValueError, match="not a square"):
        sampler([torch.randn(1, 15, 3)])
    with pytest.raises(ValueError, match="smaller than pool size"):
        sampler([torch.randn(1, 3, 1, 4)])
    with pytest.raises(ValueError, match=r"shape \(b, h\*w, c\)"):
        sampler([torch.randn(16, 3)])
    _, ids = sampler(square)
    with pytest.raises(ValueError, match="2 id tensors"):
        sampler(square, patch_ids=ids[:1])
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        sampler(square, patch_ids=[ids[0], torch.tensor([0, 4])])
    with pytest.raises(ValueError, match="integer tensor"):
        sampler(square, patch_ids=[ids[0], torch.tensor([0.0, 1.0])])
    with pytest.raises(ValueError, match="1-D"):
        sampler(square, patch_ids=[ids[0], torch.tensor([[0, 1]])])
    with pytest.raises(ValueError, match="expected 2 feature maps"):
        PatchSampler(channels=[3, 3])(square)
    with pytest.raises(ValueError, match="has 3 channels, expected 4"):
        PatchSampler(channels=[4])(square)
    # Non-square token maps are fine without pooling.
    samples, _ = PatchSampler(num_patches=4)([torch.randn(1, 15, 3)])
    assert samples[0].shape == (1, 4, 3)


# ---------------------------------------------------------------- PatchNCELoss


def test_module_matches_sampler_plus_functional_average() -> None:
    torch.manual_seed(0)
    loss_fn = PatchNCELoss(
        channels=[4, 6], num_patches=8, use_mlp=True, mlp_dim=8, pool_sizes=(1, 2)
    )
    queries = [
        _randn(2, 4, 4, 4, seed=0, dtype=torch.float32),
        _randn(2, 64, 6, seed=1, dtype=torch.float32),
    ]
    keys = [
        _randn(2, 4, 4, 4, seed=2, dtype=torch.float32),
        _randn(2, 64, 6, seed=3, dtype=torch.float32),
    ]
    loss = loss_fn(queries, keys, generator=torch.Generator().manual_seed(5))

    q_samples, ids = loss_fn.sampler(queries, generator=torch.Generator().manual_seed(5))
    k_samples, _ = loss_fn.sampler(keys, patch_ids=ids)
    expected = torch.stack(
        [patch_nce_loss(q, k) for q, k in zip(q_samples, k_samples, strict=True)]
    ).mean()
    assert len(q_samples) == 4
    torch.testing.assert_close(loss, expected)


def test_module_gradients_reach_query_and_heads_but_not_key() -> None:
    torch.manual_seed(0)
    loss_fn = PatchNCELoss(channels=[4], num_patches=8, use_mlp=True, mlp_dim=8)
    query = torch.randn(1, 4, 4, 4, requires_grad=True)
    key = torch.randn(1, 4, 4, 4, requires_grad=True)
    loss_fn([query], [key], generator=torch.Generator().manual_seed(0)).backward()
    assert key.grad is None
    assert query.grad is not None and torch.isfinite(query.grad).all()
    assert all(p.grad is not None for p in loss_fn.parameters())


def test_module_identical_separated_features_beat_random_ones() -> None:
    basis = torch.eye(16, dtype=torch.float64).T.reshape(1, 16, 4, 4)  # 16 orthonormal locations
    loss_fn = PatchNCELoss(num_patches=16)
    same = loss_fn([basis], [basis.clone()], generator=torch.Generator().manual_seed(0))
    other = loss_fn(
        [basis], [_randn(1, 16, 4, 4, seed=1)], generator=torch.Generator().manual_seed(0)
    )
    assert float(same) < 1e-4 < math.log(16) < float(other) + 1.0


def test_module_is_deterministic_given_a_generator() -> None:
    loss_fn = PatchNCELoss(num_patches=5)
    queries, keys = [_randn(2, 49, 3, seed=0)], [_randn(2, 49, 3, seed=1)]
    a = loss_fn(queries, keys, generator=torch.Generator().manual_seed(11))
    b = loss_fn(queries, keys, generator=torch.Generator().manual_seed(11))
    assert torch.equal(a, b)


def test_module_rejects_mismatched_layers_and_bad_temperature() -> None:
    loss_fn = PatchNCELoss(num_patches=4)
    with pytest.raises(ValueError, match="2 query layers but 1 key layers"):
        loss_fn([torch.randn(1, 16, 3)] * 2, [torch.randn(1, 16, 3)])
    with pytest.raises(ValueError, match="layer 0: query shape"):
        loss_fn([torch.randn(1, 16, 3)], [torch.randn(1, 16, 4)])
    with pytest.raises(ValueError, match="non-empty sequence"):
        loss_fn([], [])
    with pytest.raises(ValueError, match="temperature"):
        PatchNCELoss(temperature=0.0)
    with pytest.raises(ValueError, match="channels is required"):
        PatchNCELoss(use_mlp=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_features_with_cpu_generator_match_cpu_run() -> None:
    features = [_randn(2, 64, 8, seed=0, dtype=torch.float32)]
    keys = [_randn(2, 64, 8, seed=1, dtype=torch.float32)]
    loss_fn = PatchNCELoss(num_patches=16, pool_sizes=(1, 2))
    cpu = loss_fn(features, keys, generator=torch.Generator().manual_seed(0))
    cuda = loss_fn(
        [f.cuda() for f in features],
        [k.cuda() for k in keys],
        generator=torch.Generator().manual_seed(0),
    )
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=1e-5)
    _, ids = loss_fn.sampler([f.cuda() for f in features])  # default CUDA generator
    assert all(i.device.type == "cuda" for i in ids)


def test_the_runtime_checker_rejects_a_transposed_key_with_a_clear_message() -> None:
    """The suite runs with jaxtyping + beartype on (tests/conftest.py): shapes are enforced."""
    import jaxtyping

    query = torch.randn(2, 16, 8)
    with pytest.raises(jaxtyping.TypeCheckError, match=r"parameter 'key'[\s\S]*b n c"):
        patch_nce_loss(query, query.transpose(1, 2))
