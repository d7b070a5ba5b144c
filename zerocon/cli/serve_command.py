"""``zerocon serve``: the editor as a local web page (Gradio)."""

from __future__ import annotations

import argparse
from typing import Any

from zerocon.cli.edit_command import STEPS
from zerocon.cli.errors import CliError
from zerocon.cli.files import DEFAULT_MAX_PIXELS, MAX_PIXELS_LIMIT
from zerocon.cli.loading import check_sources, load_pipeline
from zerocon.cli.numbers import whole_number


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``serve`` command."""
    p = subparsers.add_parser("serve", help="edit in a web page (needs the zerocon[demo] extra)")
    p.add_argument("model", nargs="?", default=None, help="model folder (default: the embedded model)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=whole_number(1, 65535), default=7860, help="port (default 7860)")
    p.add_argument("--max-pixels", type=whole_number(1, MAX_PIXELS_LIMIT), default=DEFAULT_MAX_PIXELS,
                   help=f"largest accepted image in pixels (default {DEFAULT_MAX_PIXELS:,}, as zerocon edit)")
    p.add_argument("--steps", type=STEPS, default=20, help="the page's starting number of steps (default 20)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=run)


def gradio_module() -> Any:
    """Import Gradio, or say how to install it."""
    try:
        import gradio
    except ImportError as error:
        raise CliError("zerocon serve needs Gradio: pip install 'zerocon[demo]'") from error
    return gradio


def run(args: argparse.Namespace) -> int:
    """Load the model, build the page and serve it until interrupted.

    Returns:
        The exit code (0 after Ctrl-C).

    Raises:
        CliError: without Gradio, for a model folder or device that cannot be used, or a port
            that is taken.
    """
    gradio_module()
    from zerocon.web import build_app, serve_app

    check_sources(args.model, args.device, None)
    pipe = load_pipeline(args.model, args.device)
    app = build_app(pipe, max_pixels=args.max_pixels, default_steps=args.steps)
    try:
        url = serve_app(app, args.host, args.port)
    except OSError as error:
        raise CliError(f"cannot serve on {args.host}:{args.port}: {str(error).splitlines()[0]}") from error
    print(f"zerocon serve: {url} (Ctrl-C stops it)", flush=True)
    try:
        app.block_thread()  # returns on Ctrl-C, after closing the server
    finally:
        app.close()
    return 0
