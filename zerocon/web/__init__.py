"""``zerocon serve``'s web page (Gradio, the ``zerocon[demo]`` extra) and the edit job behind it.

- ``build_app``, ``serve_app`` — the Gradio page around a loaded pipeline, and starting it
  (Gradio is imported when they are called).
- ``WebEditRequest``, ``check_request``, ``run_web_edit``, ``propose_caption``,
  ``WebInputError`` — one edit as the page asks for it, usable without Gradio.
"""

from zerocon.web.app import build_app, serve_app
from zerocon.web.edit_job import (
    WebEditRequest,
    WebEditResult,
    WebInputError,
    check_request,
    load_upload,
    propose_caption,
    run_web_edit,
)

__all__ = [
    "WebEditRequest",
    "WebEditResult",
    "WebInputError",
    "build_app",
    "check_request",
    "load_upload",
    "propose_caption",
    "run_web_edit",
    "serve_app",
]
