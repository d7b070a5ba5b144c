"""Tests for zerocon.losses: cross_attention_loss and CrossAttentionLoss."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.losses import CrossAttentionLoss, cross_attention_loss


def _maps(bh: int, p: int, t: int, seed: int) -> torch.Tensor:
    logits = torch.randn(
        bh, p, t, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    return logits.softmax(dim=-1)


@settings(max_examples=30, deadline=None)
@given(
    bh=st.integers(1, 4),
    p=st.integers(1, 8),
    t=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
)
def test_zero_for_identical_maps_and_matches_explicit_sums(
    bh: int, p: int, t: int, seed: int
) -> None:
    edit, reference = _maps(bh, p, t, seed), _maps(bh, p, t, seed + 1)
    assert float(cross_attention_loss(reference.clone(), reference)) == 0.0

    per_map = torch.zeros(bh, dtype=torch.float64)
    for r in range(bh):
        for i in range(p):
            for j in range(t):
                per_map[r] += (float(edit[r, i, j]) - float(reference[r, i, j])) ** 2
    torch.testing.assert_close(cross_attention_loss(edit, reference, reduction="none"), per_map)
    torch.testing.assert_close(cross_attention_loss(edit, reference), per_map.mean())
    torch.testing.assert_close(
        cross_attention_loss(edit, reference, reduction="sum"), per_map.sum()
    )


def test_hand_computed_value() -> None:
    edit = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.0, 1.0]]])
    reference = torch.tensor([[[0.0, 1.0], [0.5, 0.5]], [[0.0, 1.0], [1.0, 0.0]]])
    # row 0: 1 + 1 + 0 + 0 = 2; row 1: 0 + 0 + 1 + 1 = 2 -> mean 2, sum 4
    assert float(cross_attention_loss(edit, reference)) == 2.0
    assert float(cross_attention_loss(edit, reference, reduction="sum")) == 4.0
    assert cross_attention_loss(edit, reference, reduction="none").tolist() == [2.0, 2.0]


def test_gradient_reaches_only_edit_maps() -> None:
    edit = _maps(2, 4, 3, 0).requires_grad_()
    reference = _maps(2, 4, 3, 1).requires_grad_()
    cross_attention_loss(edit, reference).backward()
    assert reference.grad is None
    assert edit.grad is not None
    # d/dedit of mean_r sum (edit - ref)^2 = 2 (edit - ref) / bh
    torch.testing.assert_close(edit.grad, (edit - reference).detach())


def test_half_precision_is_computed_in_float32() -> None:
    edit, reference = _maps(2, 4, 3, 0).half(), _maps(2, 4, 3, 1).half()
    loss = cross_attention_loss(edit, reference)
    assert loss.dtype == torch.float32


@pytest.mark.usefixtures("unchecked")  # the library's own validation
@pytest.mark.parametrize(
    ("edit", "reference", "kwargs", "match"),
    [
        (torch.rand(2, 4), torch.rand(2, 4), {}, "batch\\*heads, pixels, tokens"),
        (torch.rand(2, 4, 3), torch.rand(2, 4, 2), {}, "same shape"),
        (torch.rand(2, 4, 3), torch.rand(2, 4, 3), {"reduction": "max"}, "reduction"),
        (torch.zeros(2, 4, 3, dtype=torch.int64), torch.rand(2, 4, 3), {}, "floating-point"),
    ],
)
def test_functional_rejects_bad_inputs(
    edit: torch.Tensor, reference: torch.Tensor, kwargs: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        cross_attention_loss(edit, reference, **kwargs)


def test_module_sums_layers() -> None:
    reference = {"down.0": _maps(2, 16, 5, 0), "up.1": _maps(4, 4, 5, 1)}
    edit = {"up.1": _maps(4, 4, 5, 2), "down.0": _maps(2, 16, 5, 3)}  # order does not matter
    expected = sum(cross_attention_loss(edit[k], reference[k]) for k in reference)
    torch.testing.assert_close(CrossAttentionLoss()(edit, reference), expected)
    expected_sum = sum(
        cross_attention_loss(edit[k], reference[k], reduction="sum") for k in reference
    )
    torch.testing.assert_close(CrossAttentionLoss(reduction="sum")(edit, reference), expected_sum)
    assert float(CrossAttentionLoss()(reference, reference)) == 0.0


def test_module_gradient_reaches_only_edit_maps() -> None:
    reference = {"a": _maps(2, 4, 3, 0).requires_grad_()}
    edit = {"a": _maps(2, 4, 3, 1).requires_grad_()}
    CrossAttentionLoss()(edit, reference).backward()
    assert reference["a"].grad is None
    assert edit["a"].grad is not None


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_module_rejects_mismatched_layers_and_shapes() -> None:
    loss_fn = CrossAttentionLoss()
    maps = _maps(2, 4, 3, 0)
    with pytest.raises(ValueError, match=r"only in edit \['b'\], only in reference \[\]"):
        loss_fn({"a": maps, "b": maps}, {"a": maps})
    with pytest.raises(ValueError, match="different layers"):
        loss_fn({"a": maps}, {"b": maps})
    with pytest.raises(ValueError, match="empty"):
        loss_fn({}, {})
    with pytest.raises(ValueError, match="layer 'a': edit shape"):
        loss_fn({"a": maps}, {"a": maps[:1]})
    with pytest.raises(ValueError, match="mappings"):
        loss_fn([maps], [maps])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction"):
        CrossAttentionLoss(reduction="none")  # type: ignore[arg-type]
