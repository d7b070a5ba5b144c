"""Caption phase: the source captions, given or from the captioner (one call for the batch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zerocon.editing.editor import Editor
    from zerocon.editing.state import ImageState


def caption_phase(editor: Editor, states: Sequence[ImageState]) -> None:
    """Set each ``state.caption`` from its request, or from one captioner call for the rest.

    Raises:
        ValueError: if an image has no source prompt and the editor has no captioner.
    """
    missing = []
    for state in states:
        if state.request.source_prompt is not None:
            state.caption = state.request.source_prompt
        else:
            missing.append(state)
    if not missing:
        return
    if editor.captioner is None:
        raise ValueError("no source prompt and no captioner: pass source_prompt= or a captioner")
    captions = editor.captioner([state.prepared.image for state in missing])
    for state, caption in zip(missing, captions, strict=True):
        state.caption = caption
        state.notices.append(f"caption from the captioner: {state.caption!r}")
