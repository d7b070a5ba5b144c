"""``X0PreviewCallback``: a strip of decoded x0 predictions every k steps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from zerocon.editing.callback import Callback
from zerocon.editing.callbacks._pictures import image_file_name, labelled_grid, upscale
from zerocon.editing.preprocessing import tensor_to_pil
from zerocon.files import save_image


class X0PreviewCallback(Callback):
    """Decode the scheduler's predicted ``x0`` every ``every`` steps and save a strip per image.

    The strip starts with the source and ends with the last step's prediction.
    Files: ``{directory}/{prefix}{index:04d}_preview.png``, or ``{directory}/{prefix[index]}preview.png``
    with one prefix per image.

    Args:
        directory: where the strips go (created).
        every: decode every ``every``-th step (and the last).
        prefix: file name prefix, or one per image index.

    Shape:
        pred_x0 ``(1, C, H/f, W/f)`` → one ``H × W`` tile per kept step.

    Raises:
        ValueError: if ``every < 1``.

    Examples:
        >>> X0PreviewCallback("previews", every=5).every
        5
    """

    def __init__(self, directory: str | Path, every: int = 5, prefix: str | Sequence[str] = "") -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.directory = Path(directory)
        self.every = every
        self.prefix = prefix
        self.written: list[Path] = []
        # Per image index: images of one batch are edited step by step together.
        self._tiles: dict[int, list[tuple[str, Image.Image]]] = {}

    def on_image_start(self, editor: Any, state: Any) -> None:
        self._tiles[state.index] = [("source", state.prepared.image)]

    @torch.no_grad()
    def on_edit_step(self, editor: Any, state: Any, step: int, timestep: int, latents: Any, pred_x0: Any) -> None:
        last = step == len(state.timesteps) - 1
        if pred_x0 is None or (step % self.every and not last):
            return
        decoded = editor.decode(pred_x0)
        self._tiles.setdefault(state.index, []).append((f"{step}", tensor_to_pil(decoded)[0]))

    def on_image_end(self, editor: Any, state: Any, image: Any) -> None:
        named = self._tiles.pop(state.index, [])
        tiles = [upscale(tile) for _, tile in named]
        grid = labelled_grid([tiles], [name for name, _ in named], ["x0"])
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / image_file_name(self.prefix, state.index, "preview")
        save_image(grid, path)  # atomic: a full disk leaves no half picture
        self.written.append(path)
