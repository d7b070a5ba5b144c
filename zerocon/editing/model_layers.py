"""Default recorded layers per UNet family: SD 1.x/2.x use the settings' defaults, SDXL its own.

The settings' defaults record every cross-attention layer (``attn2$``) and the up path's
self-attention. On SDXL that is 70 cross-attention layers with up to 20 heads, most of them at
the 32×32 level of a 1024-pixel image, where ten transformer layers sit in each block. SDXL's
defaults take instead the highest-resolution level that has attention (64×64 at 1024 pixels:
``down_blocks.1`` and ``up_blocks.1``, 10 cross-attention layers), as pix2pix-zero reads its maps
at SD 1.x's 64×64 level.
"""

from __future__ import annotations

from typing import Any

from zerocon.direction.packed_conditioning import needs_added_conditioning
from zerocon.editing.settings_groups import (
    DEFAULT_CROSS_ATTENTION_LAYERS,
    DEFAULT_INJECTION_LAYERS,
    DEFAULT_PATCH_NCE_LAYERS,
)

GENERIC = {
    "cross_attention_layers": DEFAULT_CROSS_ATTENTION_LAYERS,
    "patch_nce_layers": DEFAULT_PATCH_NCE_LAYERS,
    "injection_layers": DEFAULT_INJECTION_LAYERS,
}


def model_layer_defaults(unet: Any) -> dict[str, str]:
    """The layer patterns a UNet family uses instead of the generic defaults (empty: none).

    For an SDXL UNet (added text-time conditioning): cross-attention at the first down level
    with attention and its mirror up level; self-attention (PatchNCE, injection) at that up level.

    Examples:
        >>> from zerocon.testing import tiny_sdxl_unet, tiny_unet
        >>> model_layer_defaults(tiny_unet())
        {}
        >>> model_layer_defaults(tiny_sdxl_unet())["cross_attention_layers"]
        '^(down_blocks\\\\.1|up_blocks\\\\.0)\\\\..*attn2$'
    """
    if not needs_added_conditioning(unet):
        return {}
    down = list(unet.config.down_block_types)
    levels = [i for i, kind in enumerate(down) if "CrossAttn" in kind]
    if not levels:
        return {}
    level = levels[0]
    up = len(unet.config.up_block_types) - 1 - level
    return {
        "cross_attention_layers": rf"^(down_blocks\.{level}|up_blocks\.{up})\..*attn2$",
        "patch_nce_layers": rf"^up_blocks\.{up}\..*attn1$",
        "injection_layers": rf"^up_blocks\.{up}\..*attn1$",
    }


def resolve_layer_defaults(settings: Any, family: dict[str, str]) -> Any:
    """``settings`` with each layer pattern left at its generic default replaced by the model family's.

    Args:
        settings: an ``EditSettings``.
        family: the family's patterns by flat name (a denoiser's ``layer_defaults()``, e.g.
            [`model_layer_defaults`][zerocon.editing.model_layers.model_layer_defaults] for a UNet).

    A pattern the user chose is kept.
    """
    changes = {name: family[name] for name, generic in GENERIC.items()
               if name in family and settings.get(name) == generic}
    return settings.replace(**changes) if changes else settings
