"""FLUX's joint attention recorded: output unchanged, maps right in shape and value, gradients flow.

Tiny FLUX transformers are built locally from a config (double and single blocks, RoPE).
"""

from __future__ import annotations

import pytest
import torch
from diffusers import FluxTransformer2DModel, SD3Transformer2DModel
from diffusers.models.transformers.transformer_flux import FluxAttention, FluxAttnProcessor

from zerocon.attention import AttentionStore, LayerSelector, aggregate_cross_attention
from zerocon.attention.flux_processor import (
    FluxAttentionRecorder,
    flux_image_probabilities,
    flux_query_key_value,
)
from zerocon.attention.layers import attention_layers

TEXT, SIDE = 5, 4  # text tokens; latent tokens per side


def _flux() -> FluxTransformer2DModel:
    torch.manual_seed(0)
    return FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                  attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                  pooled_projection_dim=32, axes_dims_rope=(4, 4, 8))


def _inputs(batch: int = 1, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.stack(torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij"), -1).reshape(-1, 2)
    return {
        "hidden_states": torch.randn(batch, SIDE * SIDE, 4, generator=g),
        "encoder_hidden_states": torch.randn(batch, TEXT, 32, generator=g),
        "pooled_projections": torch.randn(batch, 32, generator=g),
        "timestep": torch.full((batch,), 0.5),
        "img_ids": torch.cat([torch.zeros(SIDE * SIDE, 1), ids.float()], dim=1),
        "txt_ids": torch.zeros(TEXT, 3),
    }


def test_flux_layers_are_joint_and_count_as_cross_attention() -> None:
    assert attention_layers(_flux()) == {"transformer_blocks.0.attn": True, "single_transformer_blocks.0.attn": True}


@pytest.mark.parametrize("batch", [1, 2])
def test_recording_changes_no_output_and_gives_maps_of_every_block(batch) -> None:
    model, inputs = _flux(), _inputs(batch)
    with torch.no_grad():
        plain = model(**inputs).sample
        store = AttentionStore(LayerSelector(kind="cross"))
        with store.attach(model):
            recorded = model(**inputs).sample
    assert torch.equal(plain, recorded)
    records = store.snapshot()
    assert {name: tuple(p.shape) for name, p in records.cross_attention.items()} == {
        "transformer_blocks.0.attn": (batch * 2, SIDE * SIDE, TEXT),
        "single_transformer_blocks.0.attn": (batch * 2, SIDE * SIDE, TEXT),
    }
    for probs in records.cross_attention.values():  # a share of each image token's attention
        assert (probs >= 0).all() and (probs.sum(-1) < 1).all()
    maps = aggregate_cross_attention(records, (SIDE, SIDE))
    assert maps.shape == (batch, TEXT, SIDE, SIDE)
    with store.paused(), torch.no_grad():  # a paused store records nothing new
        store.reset()
        with store.attach(model):
            model(**inputs)
    assert store.snapshot().cross_attention == {}


@pytest.mark.parametrize("single", [False, True])
def test_the_recomputed_probabilities_reproduce_the_layers_output(single) -> None:
    """P·V from the recomputed probabilities, through the output projection, is the layer's output."""
    torch.manual_seed(1)
    attn = FluxAttention(16, heads=2, dim_head=8, added_kv_proj_dim=None if single else 16, pre_only=single)
    attn.set_processor(FluxAttnProcessor())
    x, text = torch.randn(2, 9 if single else 6, 16), None if single else torch.randn(2, 3, 16)
    length = 3
    from diffusers.models.embeddings import FluxPosEmbed

    ids = torch.cat([torch.zeros(3, 3), torch.arange(6).float()[:, None].expand(6, 3)])
    rotary = FluxPosEmbed(theta=10000, axes_dim=[2, 2, 4])(ids)
    with torch.no_grad():
        out = attn(x, text, image_rotary_emb=rotary)
        probs = flux_image_probabilities(attn, x, text, rotary, length)
        _, _, value = flux_query_key_value(attn, x, text, rotary)
        mixed = (probs @ value).transpose(1, 2).flatten(2)  # (B, N_image, H·D)
    if single:
        torch.testing.assert_close(mixed, out[:, length:], rtol=1e-4, atol=1e-5)
    else:
        torch.testing.assert_close(attn.to_out[1](attn.to_out[0](mixed)), out[0], rtol=1e-4, atol=1e-5)


def test_gradients_reach_the_latent_through_the_maps() -> None:
    model, inputs = _flux(), _inputs()
    latent = inputs["hidden_states"].requires_grad_(True)
    store = AttentionStore(LayerSelector(kind="cross"), keep_graph=True)
    with store.attach(model):
        model(**inputs)
    loss = sum(p[..., 1].pow(2).sum() for p in store.snapshot().cross_attention.values())
    (grad,) = torch.autograd.grad(loss, latent)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_a_recorder_without_text_length_skips_single_blocks() -> None:
    attn = FluxAttention(16, heads=2, dim_head=8, pre_only=True)
    seen = {}

    class Sink:
        def receive_cross(self, name, probs, heads):
            seen[name] = probs

    attn.set_processor(FluxAttentionRecorder("single", Sink(), FluxAttnProcessor()))
    with torch.no_grad():
        attn(torch.randn(1, 9, 16))
    assert seen == {}


def test_sd3_joint_layers_are_recorded_by_the_same_store() -> None:
    torch.manual_seed(0)
    model = SD3Transformer2DModel(sample_size=4, patch_size=1, in_channels=4, num_layers=2, attention_head_dim=8,
                                  num_attention_heads=2, caption_projection_dim=16, joint_attention_dim=16,
                                  pooled_projection_dim=16, out_channels=4)
    args = (torch.randn(1, 4, 4, 4), torch.randn(1, TEXT, 16), torch.randn(1, 16), torch.tensor([500]))
    with torch.no_grad():
        plain = model(*args).sample
        store = AttentionStore(LayerSelector(kind="cross"))
        with store.attach(model):
            recorded = model(*args).sample
    assert torch.equal(plain, recorded)
    shapes = {name: tuple(p.shape) for name, p in store.snapshot().cross_attention.items()}
    assert shapes == {f"transformer_blocks.{i}.attn": (2, 16, TEXT) for i in range(2)}
