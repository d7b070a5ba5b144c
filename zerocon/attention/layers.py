"""Discover a diffusers model's attention layers through its processor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

PROCESSOR_SUFFIX = ".processor"


def layer_name(processor_name: str) -> str:
    """Turn a diffusers processor name into the attention layer's module name.

    Args:
        processor_name: a key of ``model.attn_processors``, e.g.
            ``"mid_block.attentions.0.transformer_blocks.0.attn2.processor"``.

    Returns:
        The name without the trailing ``".processor"`` (unchanged if it has none).

    Examples:
        >>> layer_name("up_blocks.1.attentions.0.transformer_blocks.0.attn1.processor")
        'up_blocks.1.attentions.0.transformer_blocks.0.attn1'
    """
    return processor_name.removesuffix(PROCESSOR_SUFFIX)


def processor_registry(model: Any) -> dict[str, Any]:
    """Return ``model.attn_processors`` after checking that ``model`` has a processor registry.

    Args:
        model: a diffusers model with ``attn_processors`` and ``set_attn_processor``
            (e.g. ``UNet2DConditionModel``).

    Returns:
        A fresh ``dict`` from processor name to processor object, in registry order.

    Raises:
        TypeError: if ``model`` has no ``attn_processors`` mapping or no ``set_attn_processor``.

    Examples:
        >>> from zerocon.testing import tiny_unet
        >>> len(processor_registry(tiny_unet()))
        8
    """
    processors = getattr(model, "attn_processors", None)
    if not isinstance(processors, Mapping) or not callable(
        getattr(model, "set_attn_processor", None)
    ):
        raise TypeError(
            "expected a diffusers model with an `attn_processors` registry and "
            f"`set_attn_processor` (e.g. UNet2DConditionModel), got {type(model).__name__}"
        )
    return dict(processors)


def is_joint_attention(module: Any) -> bool:
    """Whether an attention module attends over a joint image-and-text sequence (an MMDiT layer).

    SD3's and FLUX's double-stream layers project a second (text) stream (``added_kv_proj_dim``);
    FLUX's single-stream layers (``FluxAttention`` with ``pre_only``) see text and image tokens in
    one sequence.

    Examples:
        >>> from diffusers.models.attention_processor import Attention
        >>> is_joint_attention(Attention(8, added_kv_proj_dim=8)), is_joint_attention(Attention(8))
        (True, False)
    """
    if getattr(module, "added_kv_proj_dim", None) is not None:
        return True
    return type(module).__name__ == "FluxAttention" and bool(getattr(module, "pre_only", False))


def attention_layers(model: Any) -> dict[str, bool]:
    """List a model's attention layers and whether each one is a cross-attention layer.

    Cross vs self is read from the module's ``is_cross_attention`` attribute (the module is
    found with ``named_modules()`` under the processor name without ``".processor"``). Only if
    that attribute is unavailable does the Stable Diffusion naming convention decide:
    ``attn2`` is cross-attention, ``attn1`` is self-attention. A joint (MMDiT) layer, whose image
    tokens attend to the text among other tokens, counts as cross-attention
    (`is_joint_attention`).

    Args:
        model: a diffusers model with a processor registry (see [`processor_registry`][zerocon.attention.processor_registry]).

    Returns:
        An ordered ``dict`` from layer name (processor name without ``".processor"``) to
        ``True`` for cross-attention, ``False`` for self-attention.

    Raises:
        TypeError: if ``model`` has no processor registry.
        ValueError: if a layer's kind can be read neither from its module nor from its name.

    Examples:
        >>> from zerocon.testing import tiny_unet
        >>> layers = attention_layers(tiny_unet())
        >>> layers["mid_block.attentions.0.transformer_blocks.0.attn2"]
        True
    """
    processors = processor_registry(model)
    modules: dict[str, nn.Module] = (
        dict(model.named_modules()) if isinstance(model, nn.Module) else {}
    )
    layers: dict[str, bool] = {}
    for processor_name in processors:
        name = layer_name(processor_name)
        flag = getattr(modules.get(name), "is_cross_attention", None)
        if is_joint_attention(modules.get(name)):
            layers[name] = True
        elif isinstance(flag, bool):
            layers[name] = flag
        elif name.endswith("attn2"):
            layers[name] = True
        elif name.endswith("attn1"):
            layers[name] = False
        else:
            raise ValueError(
                f"cannot tell whether attention layer {name!r} is cross- or self-attention: "
                "its module has no boolean `is_cross_attention` and its name ends in neither "
                "'attn1' nor 'attn2'"
            )
    return layers
