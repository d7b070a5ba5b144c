"""Cross-attention guidance loss of pix2pix-zero: L2 between edit and reference maps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from zerocon.losses._checks import (
    at_least_float32,
    check_finite,
    check_floating,
    check_reduction,
    reduce,
)

__all__ = ["CrossAttentionLoss", "cross_attention_loss"]


def cross_attention_loss(
    edit_maps: Float[Tensor, "bh p t"],
    reference_maps: Float[Tensor, "bh p t"],
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Float[Tensor, "*r"]:
    """Squared L2 distance between cross-attention maps, per map (pix2pix-zero).

    For every row ``r`` of the ``batch·heads`` dimension, ``Σ_{pixels, tokens}
    (edit[r] − reference[r])²``; then ``"mean"`` (default) or ``"sum"`` over rows, or
    ``"none"``. The reference is detached inside. Half-precision inputs are computed
    in float32.

    Args:
        edit_maps: attention probabilities of the edit pass.
        reference_maps: attention probabilities of the reference pass, same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the ``bh`` rows.

    Shape:
        - edit_maps, reference_maps: ``(bh, p, t)`` — batch·heads, pixels, tokens.
        - output: scalar, or ``(bh,)`` when ``reduction="none"``.

    Returns:
        The loss.

    Raises:
        ValueError: if the maps are not 3-D floating tensors of the same shape, hold NaN or
            infinite values or values so large the loss overflows, or ``reduction`` is invalid.

    Examples:
        >>> ref = torch.softmax(torch.randn(2, 16, 5), dim=-1)
        >>> float(cross_attention_loss(ref.clone(), ref))
        0.0
    """
    check_floating(edit_maps, "edit_maps")
    check_floating(reference_maps, "reference_maps")
    check_reduction(reduction)
    if edit_maps.ndim != 3:
        raise ValueError(
            f"edit_maps must have shape (batch*heads, pixels, tokens), got {tuple(edit_maps.shape)}"
        )
    if edit_maps.shape != reference_maps.shape:
        raise ValueError(
            f"edit_maps and reference_maps must have the same shape, "
            f"got {tuple(edit_maps.shape)} and {tuple(reference_maps.shape)}"
        )
    check_finite(edit_maps, "edit_maps")
    check_finite(reference_maps, "reference_maps")
    edit = at_least_float32(edit_maps)
    reference = reference_maps.detach().to(edit.dtype)
    per_map = (edit - reference).pow(2).sum(dim=(1, 2))
    if not bool(torch.isfinite(per_map.detach()).all()):
        raise ValueError("the cross-attention loss overflowed: the maps' values are too large for attention maps")
    return reduce(per_map, reduction)


class CrossAttentionLoss(nn.Module):
    """Cross-attention loss summed over layers: ``Σ_layers cross_attention_loss``.

    Args:
        reduction: how each layer reduces its ``bh`` rows, ``"mean"`` (default, as in
            pix2pix-zero and docs/method.md §5) or ``"sum"``.

    Shape:
        - edit_maps[name], reference_maps[name]: ``(bh, p, t)``.
        - output: scalar.

    Raises:
        ValueError: if ``reduction`` is invalid, the mappings are empty or have
            different keys, or any layer's maps have different shapes.

    Examples:
        >>> loss_fn = CrossAttentionLoss()
        >>> ref = {"up.0": torch.rand(2, 16, 5), "up.1": torch.rand(2, 64, 5)}
        >>> edit = {name: m + 0.1 for name, m in ref.items()}
        >>> round(float(loss_fn(edit, ref)), 4)  # 0.01 * (16*5 + 64*5)
        4.0
    """

    def __init__(self, reduction: Literal["mean", "sum"] = "mean") -> None:
        super().__init__()
        check_reduction(reduction, ("mean", "sum"))
        self.reduction: Literal["mean", "sum"] = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

    def forward(
        self, edit_maps: Mapping[str, Float[Tensor, "_ _ _"]], reference_maps: Mapping[str, Float[Tensor, "_ _ _"]]
    ) -> Float[Tensor, "*r"]:
        """Sum ``cross_attention_loss`` over the layers named in both mappings.

        Args:
            edit_maps: layer name → edit-pass attention probabilities.
            reference_maps: layer name → reference-pass attention probabilities.

        Returns:
            The scalar loss.
        """
        if not isinstance(edit_maps, Mapping) or not isinstance(reference_maps, Mapping):
            raise ValueError(
                "edit_maps and reference_maps must be mappings of layer name to tensor"
            )
        if len(edit_maps) == 0:
            raise ValueError("edit_maps is empty: record at least one cross-attention layer")
        if set(edit_maps) != set(reference_maps):
            only_edit = sorted(set(edit_maps) - set(reference_maps))
            only_ref = sorted(set(reference_maps) - set(edit_maps))
            raise ValueError(
                f"edit_maps and reference_maps have different layers: "
                f"only in edit {only_edit}, only in reference {only_ref}"
            )
        losses = []
        for name, edit in edit_maps.items():
            reference = reference_maps[name]
            if (
                isinstance(edit, Tensor)
                and isinstance(reference, Tensor)
                and edit.shape != reference.shape
            ):
                raise ValueError(
                    f"layer {name!r}: edit shape {tuple(edit.shape)} != reference shape {tuple(reference.shape)}"
                )
            losses.append(cross_attention_loss(edit, reference, reduction=self.reduction))
        return torch.stack(losses).sum()
