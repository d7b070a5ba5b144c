"""``StepFunctionCallback``: a plain ``f(image_index, step_index, timestep, latents)`` as a callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from zerocon.editing.callback import Callback


class StepFunctionCallback(Callback):
    """Call ``function(image_index, step_index, timestep, latents)`` after each edit step.

    This is what the pipeline's ``callback=`` argument becomes.

    Shape:
        latents: ``(1, C, H/f, W/f)``.

    Example:
        >>> import torch
        >>> seen = []
        >>> hook = StepFunctionCallback(lambda i, k, t, x: seen.append((i, k, t)))
        >>> hook.on_edit_step(None, type("S", (), {"index": 0})(), 3, 500, torch.zeros(1), None)
        >>> seen
        [(0, 3, 500)]
    """

    def __init__(self, function: Callable[[int, int, int, Tensor], None]) -> None:
        self.function = function

    def on_edit_step(self, editor: Any, state: Any, step: int, timestep: int, latents: Tensor, pred_x0: Any) -> None:
        self.function(state.index, step, timestep, latents)
