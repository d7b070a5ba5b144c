"""``LivePreviewCallback``: hand the decoded x0 prediction to a function every k steps, while the edit runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from zerocon.editing.callback import Callback
from zerocon.editing.preprocessing import tensor_to_pil


class LivePreviewCallback(Callback):
    """Decode the scheduler's predicted ``x0`` every ``every`` steps and pass it on at once.

    Unlike [`X0PreviewCallback`][zerocon.editing.callbacks.X0PreviewCallback], which writes a
    strip when an image is done, this one calls ``sink(index, step, total, image)`` during the
    edit, e.g. to update a progress picture in a web page.

    Args:
        sink: called with the image index, the step index, the number of steps and the decoded
            prediction (a PIL image).
        every: decode every ``every``-th step (and the last).

    Shape:
        pred_x0 ``(1, C, H/f, W/f)`` of one image → one ``H × W`` PIL image.

    Raises:
        ValueError: if ``every < 1``.

    Examples:
        >>> seen = []
        >>> preview = LivePreviewCallback(lambda index, step, total, image: seen.append(step), every=4)
        >>> preview.every
        4
    """

    def __init__(self, sink: Callable[[int, int, int, Image.Image], Any], every: int = 5) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.sink = sink
        self.every = every

    @torch.no_grad()
    def on_edit_step(self, editor: Any, state: Any, step: int, timestep: int, latents: Any, pred_x0: Any) -> None:
        total = len(state.timesteps)
        if pred_x0 is None or (step % self.every and step != total - 1):
            return
        decoded = editor.decode(pred_x0)
        self.sink(state.index, step, total, tensor_to_pil(decoded)[0])
