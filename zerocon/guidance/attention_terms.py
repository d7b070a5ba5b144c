"""The two guidance terms of pix2pix-zeroCon: cross-attention L2 and PatchNCE on features."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from zerocon.guidance.guidance_term import GuidanceInputs, GuidanceTerm
from zerocon.losses import CrossAttentionLoss, PatchNCELoss


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


class CrossAttentionGuidance(GuidanceTerm):
    """pix2pix-zero's term: ``Σ_layers`` L2 between edit and reference cross-attention maps.

    Args:
        weight: λ_xa (default 1.0).
        layers: restrict to these layer names (default: every recorded layer).

    Shape:
        records' ``cross_attention[name]``: ``(b·heads, pixels, tokens)``.

    Example:
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

    def loss(self, inputs: GuidanceInputs) -> Tensor:
        edit, ref = _require_records(inputs, "cross_attention", type(self).__name__)
        names = self.layers if self.layers is not None else sorted(edit)
        return self.criterion({n: edit[n] for n in names}, {n: ref[n] for n in names})


class PatchNCEGuidance(GuidanceTerm):
    """zeroCon's term: PatchNCE between edit features (queries) and reference features (keys).

    The patch locations are drawn from ``inputs.generator`` and shared by query and key.

    Args:
        weight: λ_nce (default 1.0).
        patch_nce: the loss module (default: ``PatchNCELoss()`` — 256 patches, τ = 0.07, no heads).
        layers: restrict to these layer names (default: every recorded layer, sorted).

    Shape:
        records' ``self_attention[name]``: ``(b, pixels, channels)``.

    Example:
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
        patch_nce: PatchNCELoss | None = None,
        layers: Sequence[str] | None = None,
    ) -> None:
        super().__init__(weight)
        self.patch_nce = patch_nce if patch_nce is not None else PatchNCELoss()
        self.layers = list(layers) if layers is not None else None

    def loss(self, inputs: GuidanceInputs) -> Tensor:
        edit, ref = _require_records(inputs, "self_attention", type(self).__name__)
        names = self.layers if self.layers is not None else sorted(edit)
        missing = [n for n in names if n not in edit or n not in ref]
        if missing:
            raise ValueError(f"PatchNCEGuidance: layers missing from the records: {missing}")
        return self.patch_nce(
            [edit[n] for n in names], [ref[n] for n in names], generator=inputs.generator
        )
