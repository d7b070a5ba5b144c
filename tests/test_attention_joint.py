"""Joint attention (SD3, SD3.5): recorded image→text maps, the layer's output untouched."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import SD3Transformer2DModel
from diffusers.models.attention_processor import Attention, JointAttnProcessor2_0

from zerocon.attention.joint_processor import JointAttentionRecorder, image_to_text_probabilities


class Maps(dict):
    def receive_cross(self, name, probs, heads):
        self[name] = (probs, heads)


def _transformer(**extra) -> SD3Transformer2DModel:
    torch.manual_seed(0)
    return SD3Transformer2DModel(sample_size=4, patch_size=1, in_channels=4, num_layers=2, attention_head_dim=8,
                                 num_attention_heads=2, caption_projection_dim=16, joint_attention_dim=16,
                                 pooled_projection_dim=16, out_channels=4, **extra).eval()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return (torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 5, 16, generator=g), torch.randn(2, 16, generator=g),
            torch.tensor([500, 500]))


@pytest.mark.parametrize("family", ["sd3", "sd3.5"])
def test_recording_changes_no_output_and_maps_have_their_shape(family) -> None:
    extra = {"dual_attention_layers": (0,), "qk_norm": "rms_norm"} if family == "sd3.5" else {}
    model = _transformer(**extra)
    x, text, pooled, t = _inputs()
    with torch.no_grad():
        plain = model(x, text, pooled, t).sample
        maps = Maps()
        model.set_attn_processor({name: JointAttentionRecorder(name, maps, processor)
                                  for name, processor in model.attn_processors.items()})
        recorded = model(x, text, pooled, t).sample
    assert torch.equal(plain, recorded)
    # the joint layers only (SD3.5's extra image-only attention has no text to attend to)
    assert sorted(maps) == ["transformer_blocks.0.attn.processor", "transformer_blocks.1.attn.processor"]
    for probs, heads in maps.values():
        assert heads == 2 and probs.shape == (2 * 2, 16, 5)  # (batch·heads, image tokens 4·4, text tokens)
        assert bool((probs > 0).all()) and bool((probs.sum(-1) < 1).all())  # a share of each row's attention


@pytest.mark.parametrize("qk_norm", [None, "rms_norm"])
def test_the_recomputed_probabilities_are_the_kernels(qk_norm) -> None:
    """Full joint probabilities from the same projections reproduce the processor's output."""
    torch.manual_seed(2)
    attn = Attention(16, heads=2, dim_head=8, added_kv_proj_dim=16, context_pre_only=False, qk_norm=qk_norm,
                     added_proj_bias=True, out_bias=True, processor=JointAttnProcessor2_0())
    image, text = torch.randn(1, 6, 16), torch.randn(1, 3, 16)
    with torch.no_grad():
        expected, _ = attn(image, text)
        to_text = image_to_text_probabilities(attn, image, text)  # (heads, 6, 3)
        q = attn.to_q(image).view(1, -1, 2, 8).transpose(1, 2)
        k = attn.to_k(image).view(1, -1, 2, 8).transpose(1, 2)
        if attn.norm_q is not None:
            q, k = attn.norm_q(q), attn.norm_k(k)
        to_image = (q @ k.transpose(-1, -2) / math.sqrt(8)).softmax(-1)  # unnormalised against text: rescale below
        v = attn.to_v(image).view(1, -1, 2, 8).transpose(1, 2)
        tv = attn.add_v_proj(text).view(1, -1, 2, 8).transpose(1, 2)
        image_share = 1.0 - to_text.view(1, 2, 6, 3).sum(-1, keepdim=True)
        out = image_share * (to_image @ v) + to_text.view(1, 2, 6, 3) @ tv
        rebuilt = attn.to_out[0](out.transpose(1, 2).reshape(1, 6, 16))
    torch.testing.assert_close(rebuilt, expected, atol=1e-5, rtol=1e-4)


def test_gradients_reach_the_latent_through_the_maps() -> None:
    model = _transformer()
    maps = Maps()
    model.set_attn_processor({name: JointAttentionRecorder(name, maps, processor)
                              for name, processor in model.attn_processors.items()})
    x, text, pooled, t = _inputs()
    x.requires_grad_(True)
    model(x, text, pooled, t)
    loss = sum(probs[:, :, 2].sum() for probs, _ in maps.values())  # attention paid to text token 2
    (grad,) = torch.autograd.grad(loss, x)
    assert bool(grad.abs().sum() > 0) and bool(torch.isfinite(grad).all())
