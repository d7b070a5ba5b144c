"""LPIPS from local weights: torchmetrics' own computation on the same weights, and properties."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchmetrics.functional.image import lpips as torchmetrics_lpips

from zerocon.metrics import BackgroundLPIPS, LpipsNetwork
from zerocon.metrics.lpips_network import backbone_features

seeds = st.integers(0, 10_000)


def _backbone(net_type: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random backbone saved the way torchvision saves a classifier (``features.`` + a head)."""
    torch.manual_seed(seed)
    features = backbone_features(net_type)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(4, 4)  # ignored, as a torchvision file's classifier is
    return state


@pytest.fixture(scope="module")
def squeeze_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "squeezenet1_1.pth"
    torch.save(_backbone("squeeze"), path)
    return path


@pytest.mark.parametrize("net_type", ["squeeze", "alex", "vgg"])
def test_matches_torchmetrics_on_the_same_weights(net_type, monkeypatch) -> None:
    """torchmetrics' LPIPS, its torchvision backbone replaced by ours, gives the same distances."""
    state = _backbone(net_type, seed=3)
    ours = LpipsNetwork(state, net_type=net_type)

    def features(_name: str, pretrained: bool = False) -> torch.nn.Sequential:
        return ours.features

    monkeypatch.setattr(torchmetrics_lpips, "_get_tv_model_features", features)
    reference = torchmetrics_lpips._NoTrainLpips(net=net_type)
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 3, 64, 64, generator=g), torch.rand(3, 3, 64, 64, generator=g)
    expected = reference(a, b, normalize=True).flatten()
    assert torch.allclose(ours(a, b), expected, rtol=1e-4, atol=1e-6)
    assert bool((expected > 0).all())


@settings(max_examples=10, deadline=None)
@given(seed=seeds, top=st.integers(0, 40), left=st.integers(0, 40))
def test_changes_inside_the_mask_do_not_count(squeeze_file, seed, top, left) -> None:
    g = torch.Generator().manual_seed(seed)
    source = torch.rand(1, 3, 64, 64, generator=g)
    edited = source.clone()
    edited[..., top : top + 20, left : left + 20] = torch.rand(1, 3, 20, 20, generator=g)
    mask = torch.zeros(1, 64, 64)
    mask[:, top : top + 20, left : left + 20] = 1
    metric = BackgroundLPIPS(squeeze_file)
    metric.update(edited, source, mask)
    assert float(metric.compute()) == pytest.approx(0.0, abs=1e-6)
    metric.reset()
    metric.update(edited, source)  # without the mask the change is seen
    assert float(metric.compute()) > 1e-4


@settings(max_examples=5, deadline=None)
@given(seed=seeds, split=st.integers(1, 3))
def test_one_batch_or_several_updates_agree(squeeze_file, seed, split) -> None:
    network = LpipsNetwork(squeeze_file)
    g = torch.Generator().manual_seed(seed)
    a, b = torch.rand(4, 3, 48, 48, generator=g), torch.rand(4, 3, 48, 48, generator=g)
    whole, parts = BackgroundLPIPS(network), BackgroundLPIPS(network)
    whole.update(a, b)
    for i in range(0, 4, split):
        parts.update(a[i : i + split], b[i : i + split])
    assert float(whole.compute()) == pytest.approx(float(parts.compute()), rel=1e-5)
    assert float(whole.compute()) == pytest.approx(float(network(a, b).mean()), rel=1e-5)


def test_weights_are_local_and_checked(tmp_path, unchecked) -> None:
    with pytest.raises(FileNotFoundError, match=r"no-such\.pth"):
        BackgroundLPIPS(tmp_path / "no-such.pth")
    with pytest.raises(ValueError, match="layout"):
        LpipsNetwork(_backbone("alex"), net_type="squeeze")
    with pytest.raises(ValueError, match="net_type"):
        backbone_features("resnet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lin0"):
        LpipsNetwork(_backbone("squeeze"), head_weights={})
