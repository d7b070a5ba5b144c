"""Guidance terms: weighted losses on what a UNet forward returned, plugged in like callbacks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class GuidanceInputs:
    """What the built-in terms read: records of the edit forward and of the reference pass.

    ``edit`` and ``reference`` are usually :class:`zerocon.attention.AttentionRecords`; your own
    terms may read anything you put in ``extras``.

    Args:
        edit: records of the forward at the current (differentiable) latent.
        reference: records of the reference pass at the same step.
        latents: the latent being guided, ``(b, c, h, w)`` (requires grad).
        timestep: the current timestep.
        generator: randomness for terms that sample (e.g. PatchNCE locations).
        extras: anything else a custom term needs.

    Shape:
        - latents: ``(B, C, H, W)``.
        - edit / reference records: ``cross_attention[name]`` ``(B·heads, H·W, L)``,
          ``self_attention[name]`` ``(B, H·W, C)`` (see :class:`~zerocon.attention.AttentionRecords`).

    Example:
        >>> inputs = GuidanceInputs(edit=None, latents=torch.zeros(1, 4, 8, 8), timestep=500)
        >>> inputs.reference is None, inputs.extras
        (True, {})
    """

    edit: Any
    reference: Any = None
    latents: Tensor | None = None
    timestep: int | Tensor | None = None
    generator: torch.Generator | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class GuidanceTerm(nn.Module, ABC):
    """A weighted guidance loss. Subclass and implement :meth:`loss`.

    ``term(inputs)`` returns ``weight * loss(inputs)``; :class:`GuidedScheduler` sums the terms
    and moves the latent down the gradient of that sum.

    Args:
        weight: the term's weight (a plain float, not a parameter).
        name: key of this term in the reported losses (default: the class name).

    Shape:
        - inputs: a :class:`GuidanceInputs` (latents ``(B, C, H, W)``).
        - output: a scalar ``()`` tensor, differentiable w.r.t. ``inputs.latents``.

    Example:
        >>> class PullToZero(GuidanceTerm):
        ...     def loss(self, inputs):
        ...         return inputs.latents.pow(2).sum()
        >>> term = PullToZero(weight=0.5)
        >>> float(term(GuidanceInputs(edit=None, latents=torch.ones(1, 4, 2, 2))))
        8.0
    """

    def __init__(self, weight: float = 1.0, name: str | None = None) -> None:
        super().__init__()
        if not torch.isfinite(torch.tensor(float(weight))):
            raise ValueError(f"weight must be finite, got {weight}")
        self.weight = float(weight)
        self.term_name = name or type(self).__name__

    @abstractmethod
    def loss(self, inputs: GuidanceInputs) -> Tensor:
        """The unweighted scalar loss."""

    def forward(self, inputs: GuidanceInputs) -> Tensor:
        return self.weight * self.loss(inputs)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"
