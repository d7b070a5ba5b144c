"""One edit requested from the web page: checked inputs, the edit with live previews, its files.

Nothing here imports Gradio: the page (``zerocon.web.app``) is a thin layer over these
functions, which the tests call directly too. The limits are the command line's: the same
image loader (size checked before decoding, EXIF orientation applied) and the same settings
checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from zerocon.editing.callbacks import AttentionMapsCallback, LivePreviewCallback
from zerocon.editing.methods import DEFAULT_METHOD, available_methods, get_method
from zerocon.editing.preprocessing import to_rgb
from zerocon.editing.settings import UPPER_BOUNDS
from zerocon.files import DEFAULT_MAX_PIXELS, MAX_SEED, InputError, load_image, publish_edit

#: ``sink(step, total, image)``: a decoded x0 prediction during the edit.
PreviewSink = Callable[[int, int, Image.Image], Any]


#: What the page says when an edit runs out of memory.
NOT_ENOUGH_MEMORY = "not enough memory for this edit: try a smaller image or fewer steps"


class WebInputError(ValueError):
    """A bad request, told to the user as one line in the page."""


@dataclass(frozen=True)
class WebEditRequest:
    """What the page sends for one edit.

    Args:
        image_path: the uploaded (or rendered) source image file.
        target: the target prompt.
        caption: the source caption; empty: the model's captioner proposes it.
        method: a registered method name.
        steps: DDIM steps.
        guidance_scale: classifier-free guidance scale; ``None``: the method's preset.
        seed: the edit's generator seed.

    Examples:
        >>> WebEditRequest("a.png", "a blue circle").method
        'zerocon++'
    """

    image_path: str | None
    target: str
    caption: str = ""
    method: str = DEFAULT_METHOD
    # Numbers arrive from the page as floats, and from the raw API as any JSON value (text
    # included); ``check_request`` refuses what is not a number and makes the counts ints.
    steps: int | float | str = 20
    guidance_scale: float | str | None = None
    seed: int | float | str = 0


@dataclass
class WebEditResult:
    """The finished edit: the image, its PNG and JSON sidecar, and the attention-map grid if any."""

    image: Image.Image
    png: Path
    sidecar: Path
    attention: Path | None
    record: dict[str, Any] = field(default_factory=dict)


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise WebInputError(f"{name} must be a whole number, got {value!r}")
    if value != int(value) or not low <= value <= high:
        raise WebInputError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def check_request(request: WebEditRequest) -> WebEditRequest:
    """Check a request before any model runs; returns it with numbers normalised.

    Raises:
        WebInputError: for no image, an empty target, an unknown method, or a number that is
            not finite or is out of the command line's bounds (naming it).

    Examples:
        >>> check_request(WebEditRequest("a.png", "   "))
        Traceback (most recent call last):
        ...
        zerocon.web.edit_job.WebInputError: type a target prompt: what the edited image should show
    """
    if not request.image_path:
        raise WebInputError("upload an image (or render a shapes example) first")
    if not isinstance(request.image_path, str):
        raise WebInputError(f"the image must be an uploaded file, got {type(request.image_path).__name__}")
    if not isinstance(request.target, str) or not request.target.strip():
        raise WebInputError("type a target prompt: what the edited image should show")
    if request.caption is not None and not isinstance(request.caption, str):
        raise WebInputError(f"the caption must be text, got {type(request.caption).__name__}")
    if request.method not in available_methods():
        raise WebInputError(f"unknown method {request.method!r}; choose one of {', '.join(available_methods())}")
    steps = _whole(request.steps, "steps", 1, int(UPPER_BOUNDS["num_inference_steps"]))
    seed = _whole(request.seed, "seed", 0, MAX_SEED)
    scale = request.guidance_scale
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise WebInputError(f"guidance scale must be a finite number, got {scale!r}")
        if not 1 <= scale <= UPPER_BOUNDS["guidance_scale"]:
            raise WebInputError(f"guidance scale must lie in [1, {UPPER_BOUNDS['guidance_scale']:g}], got {scale!r}")
        scale = float(scale)
    return WebEditRequest(request.image_path, request.target.strip(), (request.caption or "").strip(),
                          request.method, steps, scale, seed)


def load_upload(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, list[str]]:
    """Open an uploaded image as ``zerocon edit`` opens an input (same size limit, EXIF, frames).

    Raises:
        WebInputError: for an image that is too large, unreadable or not an image.
    """
    try:
        image, notices = load_image(Path(path), max_pixels)
    except InputError as error:
        message = str(error).replace("--max-pixels", "the server's limit of")
        message = message.replace("; raise it to edit this image", " (zerocon serve --max-pixels raises it)")
        raise WebInputError(message.replace(str(Path(path).parent) + "/", "")) from error
    try:
        return to_rgb(image), notices  # 16-bit and float uploads by their type's range, as zerocon edit reads them
    except ValueError as error:
        raise WebInputError(str(error)) from error


def propose_caption(pipe: Any, path: str | Path | None, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """The model's captioner's caption of an uploaded image (``""`` without a captioner or image).

    Raises:
        WebInputError: for an image that cannot be used (see ``load_upload``).
    """
    if not path:
        return ""
    image, _ = load_upload(path, max_pixels)
    if getattr(pipe, "captioner", None) is None:
        return ""
    return str(pipe.captioner([image])[0])


def records_attention(method: str) -> bool:
    """Whether ``method``'s reference pass records cross-attention (so maps can be shown)."""
    chosen = get_method(method)
    return bool(chosen.reference and chosen.record_cross)


def run_web_edit(
    pipe: Any,
    request: WebEditRequest,
    workdir: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_preview: PreviewSink | None = None,
    preview_every: int | None = None,
) -> WebEditResult:
    """Run one checked edit and write ``edit.png``, ``edit.json`` (and ``edit_attention.png``).

    Args:
        pipe: a [`ZeroConPipeline`][zerocon.pipelines.ZeroConPipeline].
        request: the request (checked here again).
        workdir: a folder of this request's own (created if missing).
        max_pixels: the largest accepted image.
        on_preview: called with decoded x0 predictions while the edit runs.
        preview_every: decode a preview every this many steps (default: about 10 per edit).

    Raises:
        WebInputError: for a bad request or one the editor refuses (settings, an edit that
            leaves the valid range, not enough memory): one line for the page.
    """
    request = check_request(request)
    assert request.image_path is not None
    image, notices = load_upload(request.image_path, max_pixels)
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    callbacks: list[Any] = []
    if on_preview is not None:
        every = preview_every or max(1, int(request.steps) // 10)
        callbacks.append(LivePreviewCallback(lambda _index, step, total, picture: on_preview(step, total, picture),
                                             every=every))
    maps = records_attention(request.method)
    if maps:
        callbacks.append(AttentionMapsCallback(out, prefix=["edit_"]))
    values: dict[str, Any] = {"num_inference_steps": request.steps}
    if request.guidance_scale is not None:
        values["guidance_scale"] = request.guidance_scale
    try:
        edit = pipe(
            image,
            request.target,
            source_prompt=request.caption or None,
            method=request.method,
            generator=torch.Generator().manual_seed(int(request.seed)),
            show_progress=False,
            callbacks=callbacks,
            **values,
        )
    except (ValueError, TypeError, FileNotFoundError) as error:
        raise WebInputError(str(error).split("\n")[0]) from error
    except MemoryError as error:
        raise WebInputError(NOT_ENOUGH_MEMORY) from error
    record = edit.record(0)
    record["parameters"] = {**record["parameters"], "seed": request.seed}
    record["notices"] = [*notices, *record["notices"]]
    record["request"] = {"target": request.target, "caption": request.caption, "method": request.method,
                         "steps": request.steps, "guidance_scale": request.guidance_scale, "seed": request.seed}
    png = out / "edit.png"
    try:
        publish_edit(edit.images[0], record, png)
    except InputError as error:
        raise WebInputError(str(error)) from error
    attention = out / "edit_attention.png"
    return WebEditResult(edit.images[0], png, png.with_suffix(".json"), attention if maps and attention.exists() else None,
                         record)
