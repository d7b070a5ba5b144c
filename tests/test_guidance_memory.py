"""Lean guidance: frozen UNet weights during the edit, optional gradient checkpointing."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from zerocon.editing.memory import lean_guidance
from zerocon.pipelines import ZeroConPipeline
from zerocon.testing import tiny_unet


def _edit(pipe: ZeroConPipeline, **kwargs) -> torch.Tensor:
    image = Image.fromarray((torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(0)) * 255)
                            .to(torch.uint8).numpy(), mode="RGB")
    return pipe(image, "a blue circle on a white background", source_prompt="a red circle on a white background",
                method="zerocon", num_inference_steps=3, num_reg_iterations=1, show_progress=False,
                generator=torch.Generator().manual_seed(0), output_type="latent", **kwargs).images


def test_an_edit_never_fills_weight_gradients_and_restores_the_flags(pipe) -> None:
    pipe.unet.requires_grad_(True)
    _edit(pipe)
    assert all(p.grad is None for p in pipe.unet.parameters())
    assert all(p.requires_grad for p in pipe.unet.parameters())
    pipe.unet.requires_grad_(False)
    _edit(pipe)
    assert not any(p.requires_grad for p in pipe.unet.parameters())
    pipe.unet.requires_grad_(True)


def test_checkpointing_gives_the_same_edit_and_is_switched_off_after(pipe) -> None:
    plain = _edit(pipe)
    checkpointed = _edit(pipe, gradient_checkpointing=True)
    assert torch.allclose(plain, checkpointed, atol=1e-6)
    assert not pipe.unet.is_gradient_checkpointing


def test_lean_guidance_restores_after_an_error() -> None:
    unet = tiny_unet()
    unet.requires_grad_(True)
    with pytest.raises(RuntimeError, match="boom"), lean_guidance(unet, checkpointing=True):
        assert not any(p.requires_grad for p in unet.parameters())
        raise RuntimeError("boom")
    assert all(p.requires_grad for p in unet.parameters())
    assert not unet.is_gradient_checkpointing


def test_checkpointing_needs_a_model_that_supports_it() -> None:
    context = lean_guidance(torch.nn.Linear(2, 2), checkpointing=True)
    with pytest.raises(ValueError, match="does not support gradient checkpointing"), context:
        pass
