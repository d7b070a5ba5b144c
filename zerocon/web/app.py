"""The Gradio page of ``zerocon serve``: upload or render a source, edit it, watch x0, download.

Requests are queued and run one at a time on the shared pipeline; a request keeps everything of
its own (its files, its generator, its preview) and nothing lives between requests but the
model. Bad inputs raise ``gr.Error`` with one line; no traceback reaches the page.
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import typing
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zerocon._extras import require_extra
from zerocon.editing.methods import DEFAULT_METHOD, available_methods
from zerocon.editing.settings import UPPER_BOUNDS
from zerocon.files import DEFAULT_MAX_PIXELS
from zerocon.web.edit_job import (
    NOT_ENOUGH_MEMORY,
    WebEditRequest,
    WebInputError,
    check_request,
    propose_caption,
    run_web_edit,
)

LOG = logging.getLogger("zerocon.web")

#: How many requests may wait in the queue before new ones are turned away.
QUEUE_SIZE = 32

INTRO = (
    "# zerocon\n"
    "Zero-shot, text-guided image editing. Upload an image (or render a shapes example), check the "
    "proposed caption, type what the image should show, and press **Edit**. The x0 preview updates "
    "while the edit runs."
)


#: Pictures fill their boxes (small model outputs are scaled up, pixels kept sharp).
PAGE_CSS = """
#source img, #preview img, #result img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
"""

#: Gradio refuses uploads larger than this before they reach the editor.
MAX_UPLOAD = "64mb"


def serve_app(app: Any, host: str = "127.0.0.1", port: int | None = None, *, quiet: bool = True) -> str:
    """Start serving a page from ``build_app`` in the background; returns its address.

    The page's own options are applied here (no server-side rendering, the page's style, an
    upload size limit); ``app.block_thread()`` waits, ``app.close()`` stops.

    Raises:
        OSError: when the port is taken.
    """
    _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=True, ssr_mode=False,
                           quiet=quiet, css=PAGE_CSS, max_file_size=MAX_UPLOAD, footer_links=["api"])
    return str(url)


def _tolerant(component: Any, fallback: Callable[[Any], Any]) -> None:
    """Let a payload Gradio cannot convert through as ``fallback(payload)``, so our own checks
    name the problem in one line (``load_upload`` for an undecodable upload, ``check_request``
    for text in a number field of the raw API) instead of Gradio's hidden error.

    (An instance attribute, not a subclass: Gradio writes a stub file beside any module that
    subclasses one of its components.)
    """
    convert = component.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return convert(payload)
        except Exception:
            return fallback(payload)

    component.preprocess = preprocess


def _one_line(error: BaseException) -> str:
    if isinstance(error, WebInputError):
        return str(error)
    if isinstance(error, MemoryError):
        return NOT_ENOUGH_MEMORY
    text = str(error).split("\n")[0] or type(error).__name__
    return f"the edit failed: {text}"


def runnable_methods(pipe: Any) -> list[str]:
    """The registered methods this pipeline's model can run (``flowedit`` needs a flow-matching model, for one).

    Examples:
        >>> from zerocon.pipelines import ZeroConPipeline
        >>> from zerocon.testing import tiny_components
        >>> c = tiny_components()
        >>> "flowedit" in runnable_methods(ZeroConPipeline(c.vae, c.text_encoder, c.tokenizer, c.unet, c.scheduler))
        False
    """
    from zerocon.editing import EditSettings

    editor, names = pipe.editor(), []
    for name in available_methods():
        try:
            editor.plan(EditSettings(name))
        except ValueError:
            continue
        names.append(name)
    return names


def build_app(pipe: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS, default_steps: int = 20) -> Any:
    """Build the page around a loaded pipeline (Gradio needed: the ``zerocon[demo]`` extra).

    Endpoints (for ``gradio_client``): ``/edit`` (image, caption, target, method, steps, guidance
    scale, seed → status, preview, result, attention maps, files), ``/caption`` (image →
    caption) and ``/example`` (→ the next shapes example's image and target).

    Args:
        pipe: a [`ZeroConPipeline`][zerocon.pipelines.ZeroConPipeline].
        max_pixels: the largest accepted upload (the command line's default).
        default_steps: the steps slider's starting value.

    Returns:
        A ``gradio.Blocks``, queued; start it with ``serve_app``.

    Raises:
        ImportError: when Gradio is not installed.
        TypeError: for a ``pipe`` that is not a ``ZeroConPipeline``.
    """
    require_extra("gradio", "demo", "zerocon's web page (build_app)")
    import gradio as gr

    from zerocon.pipelines import ZeroConPipeline

    if not isinstance(pipe, ZeroConPipeline):
        raise TypeError(f"build_app needs a ZeroConPipeline, got {type(pipe).__name__} "
                        "(ZeroConPipeline.from_pretrained(folder) or .from_pipe(pipe) makes one)")

    from zerocon.shapes.demo_edits import demo_edits

    def caption_of(path: str | None) -> str:
        try:
            return propose_caption(pipe, path, max_pixels)
        except WebInputError as error:
            raise gr.Error(str(error), print_exception=False) from None

    examples = Path(tempfile.mkdtemp(prefix="zerocon-examples-"))  # renders are deterministic: shared

    def example(counter: float | None) -> tuple[str, str, int]:
        count = int(counter or 0)
        # The demo's edits six at a time: textures cycle, every third edit changes the shape.
        source, target = demo_edits(6, 6 * (count // 6))[count % 6]
        path = examples / f"shapes-{count}.png"
        if not path.exists():
            source.to_pil().save(path)
        return str(path), target, count + 1

    # Gradio streams a handler's yields only if ``inspect.isgeneratorfunction`` says so, which a
    # run-time type-checking wrapper (the test suite's) would hide.
    @typing.no_type_check
    def edit(
        image_path: str | None, caption: str, target: str, method: str, steps: float, scale: float | None,
        seed: float,
    ) -> Iterator[tuple[Any, ...]]:
        try:
            request = check_request(WebEditRequest(image_path, target, caption or "", method, steps, scale, seed))
        except WebInputError as error:
            raise gr.Error(str(error), print_exception=False) from None
        previews: queue.Queue[tuple[int, int, Any] | None] = queue.Queue()
        outcome: dict[str, Any] = {}
        workdir = Path(tempfile.mkdtemp(prefix="zerocon-serve-"))

        def work() -> None:
            try:
                outcome["result"] = run_web_edit(
                    pipe, request, workdir, max_pixels=max_pixels,
                    on_preview=lambda step, total, picture: previews.put((step, total, picture)),
                )
            except BaseException as error:  # reported in the page as one line
                outcome["error"] = error
            finally:
                previews.put(None)

        try:
            yield f"Editing with **{request.method}**, {request.steps} steps…", None, None, None, None
            worker = threading.Thread(target=work, name="zerocon-edit", daemon=True)
            worker.start()
            while (item := previews.get()) is not None:
                step, total, picture = item
                yield f"Step {step + 1} of {total}…", picture, gr.skip(), gr.skip(), gr.skip()
            worker.join()
            if "error" in outcome:
                error = outcome["error"]
                if not isinstance(error, WebInputError):
                    LOG.error("edit failed", exc_info=error)  # a real failure: its traceback in the log
                raise gr.Error(_one_line(error), print_exception=False)
            result = outcome["result"]
            seconds = result.record.get("timings", {}).get("total", float("nan"))
            status = (f"Done in {seconds:.1f} s: **{result.record['caption']}** → **{result.record['target_prompt']}**"
                      + ("" if result.attention else f" ({request.method} records no attention maps)"))
            yield status, gr.skip(), result.image, str(result.attention) if result.attention else None, [
                str(result.png), str(result.sidecar)]
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    methods = runnable_methods(pipe)
    with gr.Blocks(title="zerocon", analytics_enabled=False) as app:
        gr.Markdown(INTRO)
        counter = gr.State(0)
        with gr.Row():
            with gr.Column():
                source = gr.Image(type="filepath", label="Source image", sources=["upload", "clipboard"],
                                  format="png", height=280, elem_id="source")
                render = gr.Button("Render a shapes example", elem_id="example")
                caption = gr.Textbox(label="Caption of the source (proposed; edit it if wrong)", elem_id="caption")
                target = gr.Textbox(label="Target prompt", placeholder="what the edited image should show",
                                    elem_id="target")
                method = gr.Dropdown(methods, value=DEFAULT_METHOD if DEFAULT_METHOD in methods else methods[0],
                                     label="Method", elem_id="method")
                with gr.Accordion("Settings", open=False):
                    steps = gr.Slider(1, int(UPPER_BOUNDS["num_inference_steps"]), value=default_steps, step=1, label="Steps", elem_id="steps")
                    scale = gr.Number(value=None, label="Guidance scale (empty: the method's preset)",
                                      elem_id="scale")
                    seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
                run = gr.Button("Edit", variant="primary", elem_id="run")
            with gr.Column():
                status = gr.Markdown("", elem_id="status")
                with gr.Row():
                    preview = gr.Image(label="x0 preview (while the edit runs)", format="png", interactive=False,
                                       height=280, elem_id="preview")
                    result = gr.Image(label="Result", format="png", interactive=False, height=280, elem_id="result")
                maps = gr.Image(label="Per-token cross-attention maps (reference pass)", format="png",
                                interactive=False, elem_id="maps")
                files = gr.File(label="Download: PNG and JSON sidecar", file_count="multiple", elem_id="files")
        _tolerant(source, lambda payload: getattr(payload, "path", None))
        for number in (steps, scale, seed):
            _tolerant(number, lambda payload: payload)
        source.change(caption_of, source, caption, api_name="caption")
        render.click(example, counter, [source, target, counter], api_name="example")
        run.click(edit, [source, caption, target, method, steps, scale, seed], [status, preview, result, maps, files],
                  api_name="edit")
    app.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    # The examples' folder goes when the page is closed (or at the latest when the process ends).
    cleanup = weakref.finalize(app, shutil.rmtree, examples, True)
    close = app.close

    def close_and_clean(*args: Any, **kwargs: Any) -> Any:
        try:
            return close(*args, **kwargs)
        finally:
            cleanup()

    app.close = close_and_clean
    return app
