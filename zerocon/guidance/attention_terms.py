"""The two guidance terms of pix2pix-zeroCon: cross-attention L2 and PatchNCE on features."""

from __future__ import annotations

from collections.abc import Sequence

from einops import rearrange
from jaxtyping import Float
from torch import Tensor, nn

from zerocon.guidance.guidance_term import GuidanceInputs, GuidanceTerm
from zerocon.losses import CrossAttentionLoss, FeatureL2Loss, PatchNCELoss


def _require_records(inputs: GuidanceInputs, field: str, term: str) -> tuple[dict, dict]:
    if inputs.reference is None:
        raise ValueError(f"{term} needs reference records (GuidanceInputs.reference is None)")
    edit = getattr(inputs.edit, field, None)
    ref = getattr(inputs.reference, field, None)
    if not edit or not ref:
        raise ValueError(
            f"{term} needs non-empty {field!r} records in both edit and reference; "
            "did the AttentionStore record them (record_cross / record_self)?"
        )
    return edit, ref


def _layer_names(term: GuidanceTerm, layers: list[str] | None, edit: dict, ref: dict) -> list[str]:
    names = layers if layers is not None else sorted(edit)
    missing = [n for n in names if n not in edit or n not in ref]
    if missing:
        raise ValueError(f"{type(term).__name__}: layers missing from the records: {missing}")
    return names


def spatial_size(latent_size: tuple[int, int], pixels: int) -> tuple[int, int]:
    """The ``(h, w)`` of a UNet feature map with ``pixels`` locations, for a latent ``(H, W)``.

    A UNet layer works at ``(H/f, W/f)`` for a downsampling factor ``f``. The exact factor
    (``H % f == W % f == 0`` and ``(H/f)·(W/f) == pixels``) is used when there is one; otherwise
    a power of two with rounded-up sides (``ceil(H/f)·ceil(W/f)``, what stride-2 convolutions
    give for odd sides) is tried. Either way the answer is unique: the pixel count falls
    strictly as ``f`` grows.

    Args:
        latent_size: ``(H, W)`` of the latent.
        pixels: the layer's number of locations.

    Returns:
        ``(h, w)`` with ``h · w == pixels``.

    Raises:
        ValueError: if no factor gives ``pixels`` locations.

    Examples:
        >>> spatial_size((64, 96), 384)
        (16, 24)
        >>> spatial_size((15, 15), 16)
        (4, 4)
    """
    height, width = latent_size
    for f in range(1, max(height, width) + 1):
        if height % f == 0 and width % f == 0 and (height // f) * (width // f) == pixels:
            return height // f, width // f
    f = 1
    while f <= 2 * max(height, width):
        h, w = -(-height // f), -(-width // f)
        if h * w == pixels:
            return h, w
        f *= 2
    raise ValueError(
        f"cannot infer the spatial size of a feature map with {pixels} locations from a latent "
        f"of size {height}x{width}: no downsampling factor f gives (H/f)*(W/f) == {pixels}"
    )


class CrossAttentionGuidance(GuidanceTerm):
    """pix2pix-zero's term: ``Σ_layers`` L2 between edit and reference cross-attention maps.

    With ``inputs.token_weights`` each token's squared difference is weighted (``0`` leaves a
    token's map free to change, e.g. the edited words' of a scene edit).

    Args:
        weight: λ_xa (default 1.0).
        layers: restrict to these layer names (default: every recorded layer).

    Shape:
        records' ``cross_attention[name]``: ``(b·heads, pixels, tokens)``.

    Raises:
        ValueError: (on call) for missing records, or a layer of ``layers`` not recorded.

    Examples:
        >>> import torch
        >>> from types import SimpleNamespace as R
        >>> m = torch.softmax(torch.randn(2, 4, 3), -1)
        >>> term = CrossAttentionGuidance()
        >>> float(term(GuidanceInputs(edit=R(cross_attention={"l": m}),
        ...                           reference=R(cross_attention={"l": m}))))
        0.0
    """

    def __init__(self, weight: float = 1.0, layers: Sequence[str] | None = None) -> None:
        super().__init__(weight)
        self.layers = list(layers) if layers is not None else None
        self.criterion = CrossAttentionLoss()

    def loss(self, inputs: GuidanceInputs) -> Float[Tensor, "*r"]:
        edit, ref = _require_records(inputs, "cross_attention", type(self).__name__)
        names = _layer_names(self, self.layers, edit, ref)
        weights = inputs.token_weights
        if weights is None:
            return self.criterion({n: edit[n] for n in names}, {n: ref[n] for n in names})
        heads = getattr(inputs.edit, "heads", {})
        scaled_edit, scaled_ref = {}, {}
        for name in names:
            rows = int(edit[name].shape[0])
            per_row = rows // max(int(weights.shape[0]), 1)
            if per_row * int(weights.shape[0]) != rows or weights.shape[1] != edit[name].shape[-1]:
                raise ValueError(
                    f"token_weights of shape {tuple(weights.shape)} do not fit the maps of {name!r} "
                    f"({tuple(edit[name].shape)}, {heads.get(name, '?')} heads)"
                )
            root = weights.to(edit[name].dtype).clamp_min(0).sqrt().repeat_interleave(per_row, dim=0)[:, None, :]
            scaled_edit[name], scaled_ref[name] = edit[name] * root, ref[name] * root
        return self.criterion(scaled_edit, scaled_ref)


class PatchNCEGuidance(GuidanceTerm):
    """zeroCon's term: PatchNCE between edit features (queries) and reference features (keys).

    The patch locations are drawn from ``inputs.generator`` and shared by query and key.
    When ``inputs.latents`` is a ``(b, c, H, W)`` latent, each layer's ``(b, pixels, channels)``
    features are reshaped to ``(b, channels, h, w)`` maps first, with ``(h, w)`` inferred from
    the latent's size (see ``spatial_size``), so pooling (``pool_sizes`` > 1) works on
    non-square images and pools true spatial neighbours.

    Args:
        weight: λ_nce (default 1.0).
        patch_nce: the loss module (default: ``PatchNCELoss()`` — 256 patches, τ = 0.07, no
            heads); any module called as ``loss(queries, keys, generator=...)`` works.
        layers: restrict to these layer names (default: every recorded layer, sorted).
        balanced: see [`GuidanceTerm`][zerocon.guidance.GuidanceTerm].

    Shape:
        - records' ``self_attention[name]``: ``(b, pixels, channels)`` with
          ``pixels = (H/f)·(W/f)`` for some downsampling factor ``f``.
        - ``inputs.latents`` (optional): ``(b, c, H, W)``.

    Raises:
        ValueError: (on call) for missing records or layers, or a layer whose pixel count fits
            no downsampling factor of the latent's size.

    Examples:
        >>> import torch
        >>> from types import SimpleNamespace as R
        >>> f = torch.randn(1, 16, 8)
        >>> term = PatchNCEGuidance()
        >>> loss = term(GuidanceInputs(edit=R(self_attention={"l": f}),
        ...                            reference=R(self_attention={"l": f})))
        >>> loss.ndim
        0
    """

    def __init__(
        self,
        weight: float = 1.0,
        patch_nce: nn.Module | None = None,
        layers: Sequence[str] | None = None,
        balanced: bool = False,
    ) -> None:
        super().__init__(weight, balanced=balanced)
        self.patch_nce = patch_nce if patch_nce is not None else self.default_loss()
        self.layers = list(layers) if layers is not None else None

    @staticmethod
    def default_loss() -> nn.Module:
        return PatchNCELoss()

    def loss(self, inputs: GuidanceInputs) -> Float[Tensor, "*r"]:
        edit, ref = _require_records(inputs, "self_attention", type(self).__name__)
        names = _layer_names(self, self.layers, edit, ref)
        queries = [edit[n] for n in names]
        keys = [ref[n] for n in names]
        latents = inputs.latents
        if latents is not None and latents.ndim == 4:
            size = (int(latents.shape[-2]), int(latents.shape[-1]))
            queries = [self._as_map(q, size, n) for q, n in zip(queries, names, strict=True)]
            keys = [self._as_map(k, size, n) for k, n in zip(keys, names, strict=True)]
        return self.patch_nce(queries, keys, generator=inputs.generator)

    @staticmethod
    def _as_map(feature: Tensor, latent_size: tuple[int, int], name: str) -> Tensor:
        """``(b, h·w, c)`` → ``(b, c, h, w)`` with ``(h, w)`` inferred from the latent's size."""
        if feature.ndim != 3:
            return feature
        try:
            h, w = spatial_size(latent_size, int(feature.shape[1]))
        except ValueError as error:
            raise ValueError(f"PatchNCEGuidance: layer {name!r}: {error}") from error
        return rearrange(feature, "b (h w) c -> b c h w", h=h, w=w)


class FeatureL2Guidance(PatchNCEGuidance):
    """Positives-only feature guidance: [`FeatureL2Loss`][zerocon.losses.FeatureL2Loss] on the same features.

    Everything as [`PatchNCEGuidance`][zerocon.guidance.PatchNCEGuidance] (records, layers, reshaping, shared locations), with
    the loss module defaulting to ``FeatureL2Loss()``.

    Shape:
        See [`PatchNCEGuidance`][zerocon.guidance.PatchNCEGuidance].

    Raises:
        ValueError: (on call) as [`PatchNCEGuidance`][zerocon.guidance.PatchNCEGuidance].

    Examples:
        >>> import torch
        >>> from types import SimpleNamespace as R
        >>> f = torch.randn(1, 16, 8)
        >>> term = FeatureL2Guidance()
        >>> float(term(GuidanceInputs(edit=R(self_attention={"l": f}), reference=R(self_attention={"l": f}))))
        0.0
    """

    @staticmethod
    def default_loss() -> nn.Module:
        return FeatureL2Loss()
