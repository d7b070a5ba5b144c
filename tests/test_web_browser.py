"""zerocon serve in a real browser: headless Chromium loads the page, uploads, edits, sees the result.

CI installs Debian's ``chromium`` and sets ``ZEROCON_REQUIRE_BROWSER=1`` (see ``.ci/run``), so
there this test runs or fails; on a machine without Chromium it is skipped.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch

from zerocon.shapes import embedded_model_path, render_random
from zerocon.testing.chromium import Chromium, find_chromium

pytest.importorskip("gradio")

if find_chromium() is None:
    if os.environ.get("ZEROCON_REQUIRE_BROWSER") == "1":
        raise RuntimeError("ZEROCON_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
    pytest.skip("no chromium on PATH", allow_module_level=True)

RESULT_SHOWN = ("(() => { const i = document.querySelector('#result img');"
                " return i && i.complete && i.naturalWidth > 0 ? i.src : null; })()")
CAPTION = "(() => { const e = document.querySelector('#caption textarea'); return e && e.value; })()"


@pytest.fixture(scope="module")
def url():
    from zerocon.pipelines import ZeroConPipeline
    from zerocon.web import build_app, serve_app

    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    pipe.set_progress_bar_config(disable=True)
    app = build_app(pipe, default_steps=4)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = serve_app(app, port=port)
    yield address
    app.close()


def test_upload_edit_and_see_the_result(url, tmp_path) -> None:
    source = tmp_path / "source.png"
    render_random(torch.Generator().manual_seed(5), color="red", shape="circle", background="white",
                  pattern="plain").to_pil().save(source)
    with Chromium() as browser:
        browser.navigate(url)
        browser.wait_for("document.querySelector('#source input[type=file]') !== null")
        assert browser.evaluate("document.querySelector('#result img')") is None
        browser.set_files("#source input[type=file]", [source])
        caption = browser.wait_for(CAPTION)  # proposed by the model's captioner
        assert "circle" in caption
        browser.type_into("#target textarea", "a blue circle on a white background")
        browser.click("#run")
        src = browser.wait_for(RESULT_SHOWN, timeout=180)
        assert "/file=" in src and src.endswith(".png")
        status = browser.evaluate("document.querySelector('#status').innerText")
        assert status.startswith("Done") and "a blue circle on a white background" in status
        files = browser.evaluate("document.querySelector('#files').innerText").replace("\n", "")
        assert "edit.png" in files and "edit.json" in files
        # A bad request shows one message in the page, not a traceback.
        browser.type_into("#target textarea", " ")
        browser.click("#run")
        toast = browser.wait_for("(() => { const t = document.querySelector('.toast-body');"
                                 " return t && t.innerText; })()", timeout=60)
        assert "type a target prompt" in toast and "Traceback" not in toast
