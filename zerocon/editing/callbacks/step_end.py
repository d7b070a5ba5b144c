"""``StepEndCallback``: diffusers' ``callback_on_step_end`` as a zerocon callback."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from zerocon.editing.callback import Callback

#: The tensors a ``callback_on_step_end`` may ask for and hand back.
STEP_END_TENSORS = ("latents", "pred_x0")


class StepEndCallback(Callback):
    """Call ``function(pipe, step_index, timestep, callback_kwargs)`` after each edit step, as diffusers does.

    ``callback_kwargs`` holds the tensors named in ``tensor_inputs`` (``"latents"``, the edit
    latent ``x_{t-1}`` of this image, and ``"pred_x0"``, the scheduler's prediction of ``x_0``).
    The function returns a dict; a ``"latents"`` entry in it replaces the image's latent, which
    the next step then starts from (diffusers' way of steering from a callback). For a batch of
    images it is called once per image and step.

    Args:
        function: diffusers' ``callback_on_step_end``.
        pipe: what is passed as the first argument (the pipeline).
        tensor_inputs: diffusers' ``callback_on_step_end_tensor_inputs``.

    Shape:
        latents, pred_x0: ``(1, C, H/f, W/f)``.

    Raises:
        ValueError: for a tensor name outside ``STEP_END_TENSORS``; (on call) when the
            function returns something else than a dict, or latents of another shape.

    Examples:
        >>> import torch
        >>> hook = StepEndCallback(lambda pipe, i, t, kw: {"latents": kw["latents"] * 0}, pipe=None)
        >>> state = type("S", (), {"index": 0, "latents": torch.ones(1, 4, 2, 2)})()
        >>> hook.on_edit_step(None, state, 0, 999, state.latents, None)
        >>> float(state.latents.sum())
        0.0
    """

    def __init__(self, function: Callable[..., Any], pipe: Any, tensor_inputs: Sequence[str] = ("latents",)) -> None:
        unknown = sorted(set(tensor_inputs) - set(STEP_END_TENSORS))
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs {unknown} are not available; choose among {list(STEP_END_TENSORS)}"
            )
        self.function = function
        self.pipe = pipe
        self.tensor_inputs = list(tensor_inputs)

    def on_edit_step(self, editor: Any, state: Any, step: int, timestep: int, latents: Tensor, pred_x0: Any) -> None:
        available = {"latents": latents, "pred_x0": pred_x0}
        given = {name: available[name] for name in self.tensor_inputs}
        returned = self.function(self.pipe, step, timestep, given)
        if returned is None:
            return
        if not isinstance(returned, dict):
            raise ValueError(f"callback_on_step_end must return a dict, got {type(returned).__name__}")
        new = returned.get("latents")
        if new is not None and new is not latents:
            if tuple(new.shape) != tuple(latents.shape):
                raise ValueError(
                    f"callback_on_step_end returned latents of shape {tuple(new.shape)}, expected {tuple(latents.shape)}"
                )
            state.latents = new.to(device=latents.device, dtype=latents.dtype)
