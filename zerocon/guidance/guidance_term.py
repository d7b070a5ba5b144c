"""Guidance terms: weighted losses on what a UNet forward returned, plugged in like callbacks."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Shaped
from torch import Tensor, nn


@dataclass
class GuidanceInputs:
    """What the built-in terms read: records of the edit forward and of the reference pass.

    ``edit`` and ``reference`` are usually [`AttentionRecords`][zerocon.attention.AttentionRecords]; your own
    terms may read anything you put in ``extras``.

    Args:
        edit: records of the forward at the current (differentiable) latent.
        reference: records of the reference pass at the same step.
        latents: the latent being guided, ``(b, c, h, w)`` (requires grad).
        timestep: the current timestep.
        generator: randomness for terms that sample (e.g. PatchNCE locations): one generator,
            or one per batch row (read through [`row`][zerocon.guidance.GuidanceInputs.row]).
        pred_x0: the edit forward's prediction of the clean latent (differentiable), for
            terms on the image itself (e.g. [`ToneAnchorGuidance`][zerocon.guidance.ToneAnchorGuidance]).
        source_x0: the clean latent of the source image.
        keep_mask: ``1`` where the edit should leave the image as it was, ``0`` where it may
            change it (e.g. the complement of a local blend's mask).
        token_weights: a weight per prompt token for terms on cross-attention maps (``0``
            releases a token's map; ``None``: every token counts).
        extras: anything else a custom term needs (shared by all rows).

    Shape:
        - latents, pred_x0, source_x0: ``(B, C, H, W)``; keep_mask: ``(B, 1, H, W)``;
          token_weights: ``(B, L)``.
        - edit / reference records: ``cross_attention[name]`` ``(B·heads, H·W, L)``,
          ``self_attention[name]`` ``(B, H·W, C)`` (see [`AttentionRecords`][zerocon.attention.AttentionRecords]).

    Examples:
        >>> inputs = GuidanceInputs(edit=None, latents=torch.zeros(1, 4, 8, 8), timestep=500)
        >>> inputs.reference is None, inputs.extras
        (True, {})
    """

    edit: Any
    reference: Any = None
    latents: Float[Tensor, "b c h w"] | None = None
    timestep: int | Shaped[Tensor, "*t"] | None = None
    generator: torch.Generator | Sequence[torch.Generator | None] | None = None
    pred_x0: Float[Tensor, "..."] | None = None
    source_x0: Float[Tensor, "..."] | None = None
    keep_mask: Float[Tensor, "..."] | None = None
    token_weights: Float[Tensor, "..."] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def row(self, index: int) -> GuidanceInputs:
        """The inputs of batch row ``index`` alone, as a one-image edit would see them.

        ``edit`` and ``reference`` are cut with their ``rows`` method (as
        [`rows`][zerocon.attention.AttentionRecords.rows]), ``latents``, ``pred_x0``,
        ``source_x0``, ``keep_mask`` and ``token_weights`` to ``[index:index+1]`` (still differentiable), a
        per-row generator list to its ``index``-th entry; the timestep and ``extras`` are
        shared.

        Raises:
            ValueError: when ``edit`` or ``reference`` cannot be split into rows, or a
                generator list has no entry ``index``.

        Examples:
            >>> inputs = GuidanceInputs(edit=None, latents=torch.zeros(3, 4, 8, 8))
            >>> tuple(inputs.row(2).latents.shape)
            (1, 4, 8, 8)
        """

        def cut(records: Any, what: str) -> Any:
            if records is None:
                return None
            rows = getattr(records, "rows", None)
            if not callable(rows):
                raise ValueError(f"GuidanceInputs.{what} ({type(records).__name__}) has no rows() to split by image")
            return rows(index, index + 1)

        generator = self.generator
        if generator is not None and not isinstance(generator, torch.Generator):
            generators = list(generator)
            if index >= len(generators):
                raise ValueError(f"{len(generators)} generators for batch row {index}")
            generator = generators[index]
        def take(tensor: Tensor | None) -> Tensor | None:
            return tensor[index : index + 1] if tensor is not None else None

        return GuidanceInputs(
            cut(self.edit, "edit"), cut(self.reference, "reference"), take(self.latents), self.timestep, generator,
            take(self.pred_x0), take(self.source_x0), take(self.keep_mask), take(self.token_weights), self.extras,
        )


class GuidanceTerm(nn.Module, ABC):
    """A weighted guidance loss. Subclass and implement [`loss`][zerocon.guidance.GuidanceTerm.loss].

    ``term(inputs)`` returns ``weight * loss(inputs)``; [`GuidedScheduler`][zerocon.guidance.GuidedScheduler] sums the terms
    and moves the latent down the gradient of that sum.

    Args:
        weight: the term's weight (a plain float, not a parameter).
        name: key of this term in the reported losses (default: the class name).
        balanced: let [`GuidedScheduler`][zerocon.guidance.GuidedScheduler] rescale this term's gradient so that its norm
            is ``weight`` times the norm of the unbalanced terms' gradient, per image (the
            loss itself is reported unweighted then). Useful when two terms' gradients differ
            by orders of magnitude and a fixed weight would mean one of them alone.

    Shape:
        - inputs: a [`GuidanceInputs`][zerocon.guidance.GuidanceInputs] (latents ``(B, C, H, W)``).
        - output: a scalar ``()`` tensor, differentiable w.r.t. ``inputs.latents``.

    Examples:
        >>> class PullToZero(GuidanceTerm):
        ...     def loss(self, inputs):
        ...         return inputs.latents.pow(2).sum()
        >>> term = PullToZero(weight=0.5)
        >>> float(term(GuidanceInputs(edit=None, latents=torch.ones(1, 4, 2, 2))))
        8.0
    """

    def __init__(self, weight: float = 1.0, name: str | None = None, balanced: bool = False) -> None:
        super().__init__()
        if not math.isfinite(float(weight)):
            raise ValueError(f"{type(self).__name__}: weight must be finite, got {weight}")
        self.weight = float(weight)
        self.term_name = name or type(self).__name__
        self.balanced = bool(balanced)

    @abstractmethod
    def loss(self, inputs: GuidanceInputs) -> Float[Tensor, "*r"]:
        """The unweighted scalar loss."""

    def forward(self, inputs: GuidanceInputs) -> Float[Tensor, "*r"]:
        loss = self.loss(inputs)
        return loss if self.balanced else self.weight * loss

    def extra_repr(self) -> str:
        return f"weight={self.weight}" + (", balanced=True" if self.balanced else "")
