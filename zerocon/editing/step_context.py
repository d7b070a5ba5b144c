"""``StepContext``: what one step of the edit loop knows, typed, handed to the method and its features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jaxtyping import Float, Shaped
from torch import Tensor


@dataclass
class StepContext:
    """One step of a batch's edit.

    Attributes:
        index: the step's position (0 is the noisiest).
        t: its timestep.
        t_next: the next step's timestep (``None`` at the last step).
        x_ref: the reference latent after this step's reference step (the latent the blend
            puts back outside its mask); set by the reference step.
        reference: the reference's attention records of this step (``None`` without a
            reference pass).
        output: what the step's guided scheduler step returned (``GuidedStepOutput``), once
            taken.

    Shape:
        x_ref: ``(B, C, h, w)``, one row per image of the batch.

    Examples:
        >>> import torch
        >>> StepContext(0, torch.tensor(981), torch.tensor(961)).reference is None
        True
    """

    index: int
    t: Shaped[Tensor, ""]
    t_next: Shaped[Tensor, ""] | None
    x_ref: Float[Tensor, "b c h w"] | None = None
    reference: Any = None
    output: Any = None
