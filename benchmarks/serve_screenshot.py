"""Screenshot of ``zerocon serve`` after one edit, for docs/serve.md, and the page's timings.

Starts the page on the embedded model, opens it in headless Chromium, renders a shapes example
with the page's button, waits for the proposed caption, presses Edit and waits for the result;
then saves the whole page as a PNG and prints how long each stage took.

    .venv/bin/python benchmarks/serve_screenshot.py --out docs/img/serve.png
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

from zerocon.pipelines import ZeroConPipeline
from zerocon.shapes import embedded_model_path
from zerocon.testing.chromium import Chromium
from zerocon.web import build_app, serve_app

RESULT_SHOWN = ("(() => { const i = document.querySelector('#result img');"
                " return i && i.complete && i.naturalWidth > 0 ? i.src : null; })()")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/serve.png"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--example", type=int, default=1, help="how many times to press the example button")
    args = parser.parse_args()

    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    pipe.set_progress_bar_config(disable=True)
    app = build_app(pipe, default_steps=args.steps)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = serve_app(app, port=port)
    try:
        with Chromium(width=1280, height=1000) as browser:
            start = time.perf_counter()
            browser.navigate(url)
            browser.wait_for("document.querySelector('#example') !== null")
            loaded = time.perf_counter()
            caption = "document.querySelector('#caption textarea').value"
            for _ in range(args.example):
                before = browser.evaluate(caption)
                browser.click("#example")
                # Each example's caption is proposed anew; wait for this one's.
                browser.wait_for(f"{caption} !== {before!r} && {caption} !== ''")
            captioned = time.perf_counter()
            browser.click("#run")
            browser.wait_for(RESULT_SHOWN, timeout=300)
            edited = time.perf_counter()
            time.sleep(1.0)  # let the attention grid and files render
            args.out.parent.mkdir(parents=True, exist_ok=True)
            browser.screenshot(args.out)
            status = browser.evaluate("document.querySelector('#status').innerText")
    finally:
        app.close()
    print(f"page loaded {loaded - start:.1f} s; example + caption {captioned - loaded:.1f} s; "
          f"edit ({args.steps} steps) shown after {edited - captioned:.1f} s")
    print(f"status: {status}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
