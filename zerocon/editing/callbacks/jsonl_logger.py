"""``JsonlLogger``: one JSON line per guidance computation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zerocon.editing.callback import Callback, GuidanceEvent


class JsonlLogger(Callback):
    """Append the guidance losses and gradient norms of every step to a JSONL file.

    Each line is ``{"image": i, "step": k, "timestep": t, "loss": …, "losses": {…},
    "grad_norm": …}``, appended as each guidance computation finishes (the file is opened
    and closed per line, so a crash loses nothing). Steps whose loss or gradient was NaN/Inf
    are skipped by the guidance before any callback sees them; they are listed in the
    result's ``skipped_guidance_steps``.

    Args:
        path: the ``.jsonl`` file (its folder is created).

    Shape:
        No tensors.

    Examples:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
        >>> logger = JsonlLogger(path)
        >>> logger.on_guidance(None, type("S", (), {"index": 0})(),
        ...                    GuidanceEvent(0, 981, 1.0, {"A": 1.0}, 0.5))
        >>> json.loads(path.read_text())["grad_norm"]
        0.5
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def on_guidance(self, editor: Any, state: Any, event: GuidanceEvent) -> None:
        self._write(
            {
                "image": state.index,
                "step": event.step,
                "timestep": event.timestep,
                "loss": event.loss,
                "losses": event.losses,
                "grad_norm": event.grad_norm,
            }
        )
        return None
