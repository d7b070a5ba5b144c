"""``AttentionMapsCallback``: per-token cross-attention heat maps as PNG grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zerocon.attention import AttentionAggregator, AttentionRecords
from zerocon.editing.callback import Callback
from zerocon.editing.callbacks._pictures import (
    heat,
    image_file_name,
    labelled_grid,
    upscale,
)
from zerocon.files import save_image


class AttentionMapsCallback(Callback):
    """Write the reference pass's per-token cross-attention maps of each image as a PNG grid.

    Maps are averaged over every recorded cross-attention layer (resized to the latent's
    size) and every head, prompt-to-prompt style. The grid has one column per caption token
    and one row per chosen step, plus a last row averaged over those steps; each map is
    scaled to its own maximum and laid over a gray copy of the source image.
    Files: ``{directory}/{prefix}{index:04d}_attention.png``, or ``{directory}/{prefix[index]}attention.png``
    with one prefix per image.

    Args:
        directory: where the grids go (created).
        steps: edit-step indices to show (default: 4 evenly spaced steps).
        prefix: file name prefix (e.g. the output's stem), or one per image index.

    Shape:
        Records ``(rows·heads, h·w, tokens)`` → maps ``(tokens, H/f, W/f)``.

    Raises:
        ValueError: (at edit start) for a method without a reference pass: there are no
            maps to show.

    Examples:
        >>> AttentionMapsCallback("attention", steps=[0, 10]).steps
        [0, 10]
    """

    def __init__(self, directory: str | Path, steps: list[int] | None = None, prefix: str | Sequence[str] = "") -> None:
        self.directory = Path(directory)
        self.steps = list(steps) if steps is not None else None
        self.prefix = prefix
        self.written: list[Path] = []
        # Per image index: images of one batch are edited step by step together.
        self._rows: dict[int, list[tuple[str, np.ndarray]]] = {}
        self._total: dict[int, AttentionAggregator] = {}

    def _chosen(self, total: int) -> list[int]:
        if self.steps is not None:
            return self.steps
        return sorted({round(i * (total - 1) / 3) for i in range(4)}) if total > 1 else [0]

    def on_edit_start(self, editor: Any, plan: Any, num_images: int) -> None:
        if not plan.method.reference or not plan.method.record_cross:
            raise ValueError(
                f"attention maps need a method whose reference pass records cross-attention "
                f"(zerocon, pix2pix-zero); {plan.method.name!r} records none"
            )

    def on_image_start(self, editor: Any, state: Any) -> None:
        self._rows[state.index] = []
        self._total.pop(state.index, None)

    def on_reference_step(
        self, editor: Any, state: Any, step: int, timestep: int, latents: Any, records: AttentionRecords
    ) -> None:
        if step not in self._chosen(len(state.timesteps)) or not records.cross_attention:
            return
        h, w = (int(s) for s in latents.shape[-2:])
        if state.index not in self._total:
            self._total[state.index] = AttentionAggregator((h, w), aspect=w / h)
        self._total[state.index].add(records)
        single = AttentionAggregator((h, w), aspect=w / h)
        single.add(records)
        self._rows.setdefault(state.index, []).append((f"step {step}", single.result()[0].numpy()))

    def _labels(self, editor: Any, caption: str, tokens: int) -> list[str]:
        ids = editor.tokenizer(caption, padding="max_length", max_length=tokens, truncation=True).input_ids
        return [editor.tokenizer.decode([i]).strip() or "·" for i in ids[:tokens]]

    def on_image_end(self, editor: Any, state: Any, image: Any) -> None:
        total = self._total.pop(state.index, None)
        steps = self._rows.pop(state.index, [])
        if total is None:
            return
        rows = [*steps, ("mean", total.result()[0].numpy())]
        tokens = rows[0][1].shape[0]
        labels = self._labels(editor, state.caption, tokens)
        # Words first: the tokens of the caption plus its start and end markers.
        words = len(editor.tokenizer(state.caption, truncation=True).input_ids)
        shown = list(range(min(words, tokens)))
        source = state.prepared.image.convert("L").convert("RGB")
        tiles = []
        for _, maps in rows:
            row = []
            for t in shown:
                m = maps[t] / max(float(maps[t].max()), 1e-8)
                overlay = Image.fromarray(heat(m)).resize(source.size, Image.Resampling.BILINEAR)
                row.append(upscale(Image.blend(source, overlay, 0.6)))
            tiles.append(row)
        grid = labelled_grid(tiles, [labels[t] for t in shown], [name for name, _ in rows])
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / image_file_name(self.prefix, state.index, "attention")
        save_image(grid, path)  # atomic: a full disk leaves no half picture
        self.written.append(path)
