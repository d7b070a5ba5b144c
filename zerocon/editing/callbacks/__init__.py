"""Built-in callbacks: progress bar, JSONL logger, attention-map grids, x0 previews (saved or live), diffusers' step hooks."""

from zerocon.editing.callbacks.attention_maps import AttentionMapsCallback
from zerocon.editing.callbacks.jsonl_logger import JsonlLogger
from zerocon.editing.callbacks.live_preview import LivePreviewCallback
from zerocon.editing.callbacks.progress_bar import ProgressBar
from zerocon.editing.callbacks.step_end import StepEndCallback
from zerocon.editing.callbacks.step_function import StepFunctionCallback
from zerocon.editing.callbacks.x0_preview import X0PreviewCallback

__all__ = [
    "AttentionMapsCallback",
    "JsonlLogger",
    "LivePreviewCallback",
    "ProgressBar",
    "StepEndCallback",
    "StepFunctionCallback",
    "X0PreviewCallback",
]
