"""zerocon.metrics: properties of the edit-quality metrics (tiny models, no downloads)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zerocon.metrics import (
    BackgroundMSE,
    BackgroundPSNR,
    BackgroundSSIM,
    ClipAccuracy,
    ClipScore,
    StructureDistance,
    decode_rle_mask,
    encode_rle_mask,
    load_mask,
)
from zerocon.shapes import load_embedded_clip, render_random

seeds = st.integers(0, 10_000)


@pytest.fixture(scope="module")
def vit():
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    return ViTModel(ViTConfig(hidden_size=48, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              image_size=64, patch_size=8)).eval()


def _pixels(seed: int, **fixed: str) -> torch.Tensor:
    render = render_random(torch.Generator().manual_seed(seed), **fixed)
    return torch.from_numpy(render.image).permute(2, 0, 1)[None].float() / 255


def _random(seed: int, n: int = 2, side: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=15, deadline=None)
@given(seed=seeds)
def test_identical_images_score_perfectly(vit, seed) -> None:
    x = _random(seed, side=64)
    checks = [(StructureDistance(vit), 0.0), (BackgroundPSNR(), 100.0), (BackgroundMSE(), 0.0), (BackgroundSSIM(), 1.0)]
    for metric, expected in checks:
        metric.update(x, x)
        assert float(metric.compute()) == pytest.approx(expected, abs=1e-5), type(metric).__name__


@settings(max_examples=10, deadline=None)
@given(seed=seeds, shift=st.integers(8, 24))
def test_moving_the_object_costs_more_structure_than_recolouring_it(vit, seed, shift) -> None:
    source = _pixels(seed, color="red")
    recoloured = _pixels(seed, color="blue")
    moved = torch.roll(source, shifts=(shift, shift), dims=(2, 3))
    by_colour, by_move = StructureDistance(vit), StructureDistance(vit)
    by_colour.update(recoloured, source)
    by_move.update(moved, source)
    assert float(by_move.compute()) > float(by_colour.compute())


@settings(max_examples=30, deadline=None)
@given(seed=seeds, rows=st.integers(1, 15), cols=st.integers(1, 15))
def test_masks_exclude_the_edited_region(seed, rows, cols) -> None:
    source = _random(seed, n=1)
    mask = torch.zeros(1, 16, 16)
    mask[:, :rows, :cols] = 1
    inside = source.clone()
    inside[..., :rows, :cols] = 1 - inside[..., :rows, :cols]
    outside = source.clone()
    outside[..., -1, -1] = 1 - outside[..., -1, -1]
    for metric_type, perfect in ((BackgroundPSNR, 100.0), (BackgroundMSE, 0.0)):
        kept, broken = metric_type(), metric_type()
        kept.update(inside, source, mask)
        broken.update(outside, source, mask)
        assert float(kept.compute()) == pytest.approx(perfect, abs=1e-6)
        assert float(broken.compute()) != pytest.approx(perfect, abs=1e-6)


@settings(max_examples=10, deadline=None)
@given(seed=seeds, split=st.integers(1, 3))
def test_one_batch_or_several_updates_give_the_same_result(vit, seed, split) -> None:
    edited, source = _random(seed, n=4, side=64), _random(seed + 1, n=4, side=64)
    mask = (torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(seed)) > 0.7).float()
    for make in (lambda: StructureDistance(vit), BackgroundPSNR, BackgroundMSE, BackgroundSSIM):
        whole, parts = make(), make()
        if isinstance(whole, StructureDistance):
            whole.update(edited, source)
            parts.update(edited[:split], source[:split])
            parts.update(edited[split:], source[split:])
        else:
            whole.update(edited, source, mask)
            parts.update(edited[:split], source[:split], mask[:split])
            parts.update(edited[split:], source[split:], mask[split:])
        torch.testing.assert_close(whole.compute(), parts.compute(), rtol=1e-5, atol=1e-5)
        whole.reset()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchmetrics notes a compute() before update()
            assert torch.isnan(whole.compute())


@settings(max_examples=40, deadline=None)
@given(bits=st.lists(st.booleans(), min_size=12, max_size=12))
def test_run_length_masks_decode_what_was_encoded(bits) -> None:
    flat = np.array(bits, dtype=np.float32)
    runs = encode_rle_mask(flat.reshape(3, 4))
    decoded = decode_rle_mask(runs, 3, 4, border=False)
    assert np.array_equal(decoded[0].numpy().ravel(), flat)
    bordered = decode_rle_mask(runs, 3, 4)[0]
    assert bordered[0].all() and bordered[-1].all() and bordered[:, 0].all() and bordered[:, -1].all()
    with pytest.raises(ValueError, match="pairs"):
        decode_rle_mask([1, 2, 3], 3, 4)


def test_png_masks_and_missing_models_are_named(tmp_path) -> None:
    Image.fromarray((np.eye(8) * 255).astype(np.uint8)).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png", size=(4, 4)).shape == (1, 4, 4)
    with pytest.raises(FileNotFoundError, match=r"no/such/mask\.png"):
        load_mask(tmp_path / "no/such/mask.png")
    with pytest.raises(FileNotFoundError, match="/no/such/dino"):
        StructureDistance("/no/such/dino")
    with pytest.raises(FileNotFoundError, match="/no/such/clip"):
        ClipScore("/no/such/clip")


def test_clip_metrics_on_the_embedded_clip(tmp_path) -> None:
    clip, processor = load_embedded_clip()
    blue = _pixels(0, color="blue", shape="circle", background="white", pattern="plain")
    accuracy = ClipAccuracy(clip, processor.tokenizer)
    accuracy.update(blue, "a red circle on a white background", "a blue circle on a white background")
    accuracy.update(blue, "a blue circle on a white background", "a red circle on a white background")
    assert float(accuracy.compute()) == pytest.approx(0.5)
    score = ClipScore(clip, processor.tokenizer)
    score.update(blue, "a blue circle on a white background")
    assert 0.0 < float(score.compute()) <= 100.0
    # A folder works the same way (local only).
    clip.save_pretrained(tmp_path / "clip")
    processor.tokenizer.save_pretrained(tmp_path / "clip")
    from_folder = ClipScore(tmp_path / "clip")
    from_folder.update(blue, "a blue circle on a white background")
    torch.testing.assert_close(from_folder.compute(), score.compute())


def test_bad_images_are_refused(unchecked) -> None:
    metric = BackgroundPSNR()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metric.update(torch.full((1, 3, 4, 4), 2.0), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="differ in shape"):
        metric.update(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        metric.update(torch.zeros(3, 4, 4), torch.zeros(3, 4, 4))


# ------------------------------------------------ PIE-Bench's background definitions, by hand
def _pie_example() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """2×2 images: the top-left pixel is the edit region; one background pixel differs by 0.2."""
    source = torch.full((1, 3, 2, 2), 0.5)
    edited = source.clone()
    edited[..., 0, 0] = 1.0  # inside the edit: never counted
    edited[..., 1, 1] = 0.7  # background: off by 0.2 in every channel
    mask = torch.zeros(1, 2, 2)
    mask[:, 0, 0] = 1.0
    return edited, source, mask


def test_background_metrics_default_to_pie_benchs_whole_image_definition() -> None:
    edited, source, mask = _pie_example()
    # PIE-Bench: black out the edit region in both, then the metric over all 4 pixels × 3
    # channels: MSE = 3 · 0.2² / 12 = 0.01, PSNR = 10·log10(1 / 0.01) = 20 dB.
    # Over background pixels only: MSE = 3 · 0.2² / 9 = 0.01333…, PSNR = 18.75 dB.
    for kind, pie, ours in ((BackgroundMSE, 0.01, 0.04 / 3), (BackgroundPSNR, 20.0, 10 * np.log10(75.0))):
        default, only = kind(), kind(background_only=True)
        default.update(edited, source, mask)
        only.update(edited, source, mask)
        assert float(default.compute()) == pytest.approx(pie, rel=1e-5)
        assert float(only.compute()) == pytest.approx(ours, rel=1e-5)


def test_background_ssim_is_torchmetrics_ssim_of_the_blacked_out_images() -> None:
    from torchmetrics.functional.image import structural_similarity_index_measure

    g = torch.Generator().manual_seed(0)
    source = torch.rand(2, 3, 32, 32, generator=g)
    edited = (source + 0.1 * torch.rand(2, 3, 32, 32, generator=g)).clamp(0, 1)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:20, 4:30] = 1.0
    keep = 1.0 - mask
    expected = structural_similarity_index_measure(edited * keep, source * keep, data_range=1.0, reduction="none")
    metric = BackgroundSSIM()
    metric.update(edited, source, mask)
    assert float(metric.compute()) == pytest.approx(float(expected.mean()), rel=1e-5)
    only = BackgroundSSIM(background_only=True)
    only.update(edited, source, mask)
    assert abs(float(only.compute()) - float(metric.compute())) > 1e-4  # the two definitions differ


def test_background_lpips_has_only_pie_benchs_definition() -> None:
    from zerocon.metrics import BackgroundLPIPS
    from zerocon.metrics.lpips_network import backbone_features

    with pytest.raises(ValueError, match="PIE-Bench's definition only"):
        BackgroundLPIPS(backbone_features("squeeze").state_dict(), background_only=True)
