"""Caption phase: the source caption, given or from the captioner."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zerocon.editing.editor import Editor
    from zerocon.editing.state import ImageState


def caption_phase(editor: Editor, state: ImageState) -> None:
    """Set ``state.caption`` from the request or the editor's captioner.

    Raises:
        ValueError: if no source prompt was given and the editor has no captioner.
    """
    if state.request.source_prompt is not None:
        state.caption = state.request.source_prompt
        return
    if editor.captioner is None:
        raise ValueError("no source prompt and no captioner: pass source_prompt= or a captioner")
    state.caption = editor.captioner([state.prepared.image])[0]
    state.notices.append(f"caption from the captioner: {state.caption!r}")
