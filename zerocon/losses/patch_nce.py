"""PatchNCE: the patch-wise InfoNCE loss of CUT, as a pure function."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from zerocon.losses._checks import (
    at_least_float32,
    check_finite,
    check_floating,
    check_reduction,
    check_temperature,
    reduce,
)

__all__ = ["patch_nce_loss"]


def patch_nce_loss(
    query: Float[Tensor, "*b n c"],
    key: Float[Tensor, "*b n c"],
    temperature: float = 0.07,
    reduction: Literal["mean", "sum", "none"] = "mean",
    validate: bool = True,
) -> Float[Tensor, "*r"]:
    """Patch-wise contrastive (InfoNCE) loss between aligned query and key features.

    For every image ``b`` and location ``i`` the loss is the cross-entropy of the
    logits ``q_i · k_j / τ`` over the ``n`` locations ``j`` of the same image, with
    target ``j = i``: the key at the same location is the positive and the keys at
    the other locations are the negatives (CUT, ``nce_includes_all_negatives_from_minibatch
    = False``).

    The key is detached inside, so no gradient reaches it. Features are used as
    given: normalise them first (``PatchSampler`` does). Half-precision inputs are
    computed in float32; the result is float32 then.

    Args:
        query: query features (the edited/generated image), one row per location.
            A 2-D ``(n, c)`` tensor is treated as a single image.
        key: key features (the reference image) at the same locations as ``query``.
        temperature: softmax temperature ``τ`` (> 0). Default ``0.07`` as in CUT.
        reduction: ``"mean"`` (default) or ``"sum"`` over all locations of all images,
            or ``"none"``.
        validate: refuse NaN or infinite features (one host sync per input); callers that
            checked them already (``PatchNCELoss``) pass ``False``.

    Shape:
        - query, key: ``(b, n, c)`` or ``(n, c)``.
        - output: scalar, or ``(b, n)`` (``(n,)`` for 2-D inputs) when ``reduction="none"``.

    Returns:
        The loss.

    Raises:
        ValueError: if the inputs are not 2-D/3-D floating tensors of the same shape,
            have no locations, hold NaN or infinite values (with ``validate``), or if
            ``temperature`` or ``reduction`` is invalid.

    Examples:
        >>> q = torch.nn.functional.normalize(torch.randn(2, 16, 8), dim=-1)
        >>> patch_nce_loss(q, q.clone()).shape
        torch.Size([])
        >>> patch_nce_loss(q, q.clone(), reduction="none").shape
        torch.Size([2, 16])
    """
    check_floating(query, "query")
    check_floating(key, "key")
    if validate:
        check_finite(query, "query")
        check_finite(key, "key")
    check_temperature(temperature)
    check_reduction(reduction)
    if query.ndim not in (2, 3):
        raise ValueError(f"query must have shape (b, n, c) or (n, c), got {tuple(query.shape)}")
    if query.shape != key.shape:
        raise ValueError(
            f"query and key must have the same shape, got {tuple(query.shape)} and {tuple(key.shape)}"
        )
    if query.shape[-2] == 0:
        raise ValueError("query and key must have at least one location (n >= 1)")

    single_image = query.ndim == 2
    q = at_least_float32(query.unsqueeze(0) if single_image else query)
    k = at_least_float32((key.unsqueeze(0) if single_image else key).detach())
    if k.dtype != q.dtype:
        k = k.to(q.dtype)

    batch, num_locations, _ = q.shape
    logits = torch.einsum("bic,bjc->bij", q, k) / temperature
    target = torch.arange(num_locations, device=q.device).expand(batch, num_locations)
    # cross_entropy takes the class dimension second: (b, n_classes, n_locations).
    per_location = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")

    if single_image:
        per_location = per_location.squeeze(0)
    return reduce(per_location, reduction)
