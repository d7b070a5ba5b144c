"""LayerSelector, layer discovery, batch-row selection and AttentionRecords."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers.models.attention_processor import Attention
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.attention import (
    AttentionRecords,
    LayerSelector,
    attention_layers,
    layer_name,
    normalize_batch_rows,
    take_batch_rows,
)
from zerocon.testing import tiny_unet

UP_SELF = "up_blocks.1.attentions.0.transformer_blocks.0.attn1"


def test_selector_matches_layer_and_processor_names() -> None:
    sel = LayerSelector(pattern=r"attn1$", kind="both")
    assert sel.matches(UP_SELF, is_cross=False)
    assert sel.matches(UP_SELF + ".processor", is_cross=False)
    assert LayerSelector(pattern=r"attn1\.processor$").matches(UP_SELF, is_cross=False)
    assert not LayerSelector(kind="cross").matches(UP_SELF, is_cross=False)
    assert not LayerSelector(kind="self").matches(UP_SELF, is_cross=True)
    assert not LayerSelector(pattern="^down").matches(UP_SELF, is_cross=False)


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_selector_resolutions_are_frozen_and_checked() -> None:
    sel = LayerSelector(resolutions={64, 256})  # type: ignore[arg-type]
    assert sel.resolutions == frozenset({64, 256})
    assert sel.allows_resolution(64) and not sel.allows_resolution(16)
    assert LayerSelector().allows_resolution(12345)
    hash(sel)  # frozen and hashable


@pytest.mark.usefixtures("unchecked")  # the library's own validation
@pytest.mark.parametrize(
    ("kwargs", "err"),
    [
        ({"pattern": "("}, ValueError),
        ({"pattern": 3}, TypeError),
        ({"kind": "cros"}, ValueError),
        ({"resolutions": [0]}, ValueError),
        ({"resolutions": [True]}, ValueError),
        ({"resolutions": "64"}, ValueError),
        ({"resolutions": [1.5]}, ValueError),
    ],
)
def test_selector_rejects_bad_arguments(kwargs: dict[str, Any], err: type[Exception]) -> None:
    with pytest.raises(err):
        LayerSelector(**kwargs)


def test_attention_layers_reads_kind_from_the_modules() -> None:
    unet = tiny_unet()
    layers = attention_layers(unet)
    assert len(layers) == 8
    modules = dict(unet.named_modules())
    for name, is_cross in layers.items():
        assert isinstance(modules[name], Attention)
        assert is_cross == modules[name].is_cross_attention == name.endswith("attn2")
    assert LayerSelector(kind="cross").select(unet) == [n for n, c in layers.items() if c]
    assert layer_name("a.b.processor") == "a.b" and layer_name("a.b") == "a.b"


class _Registry:
    """Not an nn.Module: kinds must come from the SD naming convention."""

    def __init__(self, names: list[str]) -> None:
        self.attn_processors = {n + ".processor": object() for n in names}

    def set_attn_processor(self, processors: Any) -> None:
        self.attn_processors = dict(processors)


def test_attention_layers_falls_back_to_names_and_rejects_unknown_names() -> None:
    assert attention_layers(_Registry(["x.attn1", "x.attn2"])) == {
        "x.attn1": False,
        "x.attn2": True,
    }
    with pytest.raises(ValueError, match="cannot tell"):
        attention_layers(_Registry(["x.attention"]))
    with pytest.raises(TypeError, match="attn_processors"):
        attention_layers(object())


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 4),
    group=st.integers(1, 3),
    data=st.data(),
)
def test_take_batch_rows_keeps_whole_groups(batch: int, group: int, data: Any) -> None:
    x = torch.arange(batch * group * 2, dtype=torch.float32).reshape(batch * group, 2)
    rows = data.draw(
        st.lists(st.integers(-batch, batch - 1), min_size=1, unique_by=lambda r: r % batch)
    )
    got = take_batch_rows(x, normalize_batch_rows(rows), group=group)  # type: ignore[arg-type]
    expected = torch.cat([x[(r % batch) * group : (r % batch + 1) * group] for r in rows])
    assert torch.equal(got, expected)


def test_take_batch_rows_matches_diffusers_head_layout() -> None:
    attn = Attention(query_dim=8, heads=4, dim_head=2)
    query = torch.randn(3, 5, 8)
    split = attn.head_to_batch_dim(query)  # (batch heads), batch-major
    picked = take_batch_rows(split, (2, 0), group=attn.heads)
    assert torch.equal(picked, attn.head_to_batch_dim(query[[2, 0]]))
    assert torch.equal(
        take_batch_rows(split, slice(1, 2), group=4), attn.head_to_batch_dim(query[1:2])
    )
    assert take_batch_rows(split, None, group=4) is split


def test_take_batch_rows_errors() -> None:
    x = torch.zeros(6, 1)
    with pytest.raises(ValueError, match="multiple"):
        take_batch_rows(x, (0,), group=4)
    with pytest.raises(ValueError, match="out of range"):
        take_batch_rows(x, (3,), group=2)
    with pytest.raises(ValueError, match="selects no row"):
        take_batch_rows(x, slice(5, None), group=2)


def test_attention_records_helpers() -> None:
    cross = torch.rand(2, 4, 3, requires_grad=True)
    feats = torch.rand(1, 4, 8)
    rec = AttentionRecords({"a.attn2": cross}, {"a.attn1": feats})
    assert len(rec) == 2 and rec.layer_names == ("a.attn2", "a.attn1")
    assert rec["a.attn2.processor"] is cross and rec["a.attn1"] is feats
    with pytest.raises(KeyError, match="no record"):
        rec["b.attn2"]
    assert not rec.detach()["a.attn2"].requires_grad
    copy = rec.clone()
    assert copy["a.attn1"].data_ptr() != feats.data_ptr()
    assert rec.to(dtype=torch.float64)["a.attn1"].dtype == torch.float64
    assert len(AttentionRecords()) == 0
