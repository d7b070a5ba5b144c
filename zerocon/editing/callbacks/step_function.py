"""``StepFunctionCallback``: a plain ``f(image_index, step_index, timestep, latents)`` as a callback."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from jaxtyping import Float
from torch import Tensor

from zerocon.editing.callback import Callback


class StepFunctionCallback(Callback):
    """Call ``function(image_index, step_index, timestep, latents)`` after each edit step.

    This is what the pipeline's ``callback=`` argument becomes. A function of three
    parameters is called as diffusers' legacy ``callback(step_index, timestep, latents)``;
    with ``every`` (diffusers' ``callback_steps``) it is called every ``every`` steps.

    Shape:
        latents: ``(1, C, H/f, W/f)``.

    Examples:
        >>> import torch
        >>> seen = []
        >>> hook = StepFunctionCallback(lambda i, k, t, x: seen.append((i, k, t)))
        >>> hook.on_edit_step(None, type("S", (), {"index": 0})(), 3, 500, torch.zeros(1), None)
        >>> seen
        [(0, 3, 500)]
    """

    def __init__(self, function: Callable[..., None], every: int = 1) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"callback_steps must be a whole number >= 1, got {every!r}")
        self.function = function
        self.every = every
        self.diffusers_style = _positional_count(function) == 3

    def on_edit_step(self, editor: Any, state: Any, step: int, timestep: int, latents: Float[Tensor, "..."], pred_x0: Any) -> None:
        if step % self.every:
            return
        if self.diffusers_style:
            self.function(step, timestep, latents)
        else:
            self.function(state.index, step, timestep, latents)


def _positional_count(function: Callable[..., None]) -> int:
    """How many positional parameters ``function`` takes (``-1``: any number, or unknown)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return -1
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return -1
    return sum(p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in parameters)
