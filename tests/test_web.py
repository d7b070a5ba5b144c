"""zerocon serve: the edit job behind the page, and the page's API through gradio_client."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zerocon.cli.main import main
from zerocon.shapes import embedded_model_path, render_random
from zerocon.web import WebEditRequest, WebInputError, check_request, run_web_edit

gradio = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402


@pytest.fixture(scope="module")
def embedded():
    from zerocon.pipelines import ZeroConPipeline

    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def source_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("src") / "source.png"
    render_random(torch.Generator().manual_seed(5), color="red", shape="circle", background="white",
                  pattern="plain").to_pil().save(path)
    return path


@pytest.fixture(scope="module")
def server(embedded):
    from zerocon.web import build_app, serve_app

    app = build_app(embedded, max_pixels=128 * 128, default_steps=4)
    url = serve_app(app, port=_free_port())
    yield url
    app.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the request checks
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
#: Per field: values past the command line's bounds (or not whole where a count is needed).
bad_values = {
    "steps": st.one_of(non_finite, st.floats(-1e9, 0.5), st.floats(1000.5, 1e12), st.just(2.5)),
    "seed": st.one_of(non_finite, st.floats(-1e9, -1e-3), st.just(1.5), st.just(2.0**65)),
    "guidance_scale": st.one_of(non_finite, st.floats(-1e9, 0.999), st.floats(100.001, 1e12)),
}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), field=st.sampled_from(sorted(bad_values)))
def test_bad_numbers_are_refused_naming_the_field(data, field) -> None:
    value = data.draw(bad_values[field])
    request = WebEditRequest("a.png", "a blue circle", **{field: value})
    with pytest.raises(WebInputError, match=field.replace("_", " ")):
        check_request(request)


@settings(max_examples=30, deadline=None)
@given(target=st.text(alphabet=" \t\n", max_size=5))
def test_an_empty_target_or_no_image_is_refused(target) -> None:
    with pytest.raises(WebInputError, match="target prompt"):
        check_request(WebEditRequest("a.png", target))
    with pytest.raises(WebInputError, match="upload an image"):
        check_request(WebEditRequest(None, "a blue circle"))
    with pytest.raises(WebInputError, match="unknown method"):
        check_request(WebEditRequest("a.png", "a blue circle", method="nope"))


@settings(max_examples=30, deadline=None)
@given(steps=st.integers(1, 1000), seed=st.integers(0, 2**64 - 1), scale=st.none() | st.floats(1, 100))
def test_good_requests_pass_normalised(steps, seed, scale) -> None:
    checked = check_request(WebEditRequest("a.png", "  a blue circle ", " a cap ", steps=float(steps), seed=seed,
                                           guidance_scale=scale))
    assert (checked.target, checked.caption, checked.steps, checked.seed) == ("a blue circle", "a cap", steps, seed)
    assert isinstance(checked.steps, int)


# --------------------------------------------------------------------------- the job alone
def test_a_web_edit_streams_previews_and_writes_its_files(embedded, source_png, tmp_path) -> None:
    seen: list[tuple[int, int, tuple[int, int]]] = []
    request = WebEditRequest(str(source_png), "a blue circle on a white background", steps=6, seed=1)
    result = run_web_edit(embedded, request, tmp_path,
                          on_preview=lambda step, total, image: seen.append((step, total, image.size)),
                          preview_every=2)
    assert [s for s, _, _ in seen] == [0, 2, 4, 5] and {t for _, t, _ in seen} == {6}
    assert {size for _, _, size in seen} == {result.image.size}
    assert Image.open(result.png).size == result.image.size
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["request"]["method"] == "zerocon++" and sidecar["request"]["seed"] == 1
    assert sidecar["caption"]  # proposed by the captioner: the request had none
    assert result.attention is not None and result.attention.exists()
    other = run_web_edit(embedded, WebEditRequest(str(source_png), "a blue circle on a white background",
                                                  method="sdedit", steps=3), tmp_path / "b")
    assert other.attention is None  # SDEdit has no reference pass to show


def test_limits_are_the_command_lines(embedded, tmp_path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(big)
    with pytest.raises(WebInputError, match=r"90,000 pixels is more than the server's limit of 10,000"):
        run_web_edit(embedded, WebEditRequest(str(big), "a cat"), tmp_path, max_pixels=10_000)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(WebInputError, match=r"cannot read image 'broken\.png'"):
        run_web_edit(embedded, WebEditRequest(str(broken), "a cat"), tmp_path)


# --------------------------------------------------------------------------- through the API
def test_the_page_edits_through_its_api(server, tmp_path) -> None:
    client = Client(server, verbose=False, download_files=str(tmp_path))
    assert set(client.view_api(return_format="dict", print_info=False)["named_endpoints"]) >= {
        "/edit", "/caption", "/example"}
    image, target = client.predict(api_name="/example")
    caption = client.predict(handle_file(image), api_name="/caption")
    assert caption.startswith("a ") and target.startswith("a ") and caption != target
    job = client.submit(handle_file(image), caption, target, "zerocon++", 5, None, 0, api_name="/edit")
    status, _, result, maps, files = job.result(timeout=300)
    assert status.startswith("Done") and Path(result).exists() and Path(maps).exists()
    assert sorted(Path(f).suffix for f in files) == [".json", ".png"]
    previews = [update[1] for update in job.outputs() if isinstance(update[1], str)]
    assert previews, "no x0 preview was streamed"
    sidecar = json.loads(next(Path(f) for f in files if f.endswith(".json")).read_text())
    assert sidecar["target_prompt"] == target and sidecar["caption"] == caption
    png = next(Path(f) for f in files if f.endswith(".png"))
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(result).convert("RGB")))


def test_bad_inputs_show_one_message(server, source_png, tmp_path, capfd) -> None:
    client = Client(server, verbose=False, download_files=str(tmp_path))
    big = tmp_path / "big.png"
    Image.new("RGB", (200, 200)).save(big)
    broken = tmp_path / "broken.png"
    broken.write_text("hello")
    cases = [
        ((handle_file(str(source_png)), "", "   ", "zerocon++", 4, None, 0), "type a target prompt"),
        ((handle_file(str(big)), "", "a cat", "zerocon++", 4, None, 0), "more than the server's limit of 16,384"),
        ((handle_file(str(broken)), "", "a cat", "zerocon++", 4, None, 0), "cannot read image 'broken.png'"),
        ((handle_file(str(source_png)), "", "a cat", "zerocon++", 4, 1e9, 0), "guidance scale must lie in"),
        ((handle_file(str(source_png)), "", "a cat", "zerocon++", 5000, None, 0), "steps must be a whole number from 1 to 1000"),
        # the raw API takes any JSON: text in a number field is named, not Gradio's hidden error
        ((handle_file(str(source_png)), "", "a cat", "zerocon++", "many", None, 0), "steps must be a whole number, got 'many'"),
        ((handle_file(str(source_png)), "", "a cat", "zerocon++", 4, "abc", 0), "guidance scale must be a finite number"),
        ((handle_file(str(source_png)), "", "a cat", "zerocon++", 4, None, "x"), "seed must be a whole number, got 'x'"),
        ((handle_file(str(source_png)), "", "a cat", "zerocon++", 4, 0.5, 0), r"guidance scale must lie in \[1, 100\]"),
    ]
    for arguments, message in cases:
        with pytest.raises(Exception, match=message) as caught:
            client.predict(*arguments, api_name="/edit")
        assert "Traceback" not in str(caught.value) and "\n" not in str(caught.value).strip()
    assert "Traceback" not in capfd.readouterr().err  # nor in the server's terminal


def test_the_examples_folder_goes_with_the_page(embedded, monkeypatch) -> None:
    import tempfile

    from zerocon.web import build_app

    created: list[Path] = []
    make = tempfile.mkdtemp

    def recording(*args, **kwargs):
        created.append(Path(make(*args, **kwargs)))
        return str(created[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", recording)
    app = build_app(embedded, default_steps=2)
    examples = [path for path in created if path.name.startswith("zerocon-examples-")]
    assert len(examples) == 1 and examples[0].is_dir()
    app.close()
    assert not examples[0].exists()


def test_requests_share_no_state(server, source_png, tmp_path) -> None:
    """Two requests queued at once give what each gives alone."""
    client = Client(server, verbose=False, download_files=str(tmp_path))
    args = {"blue": (handle_file(str(source_png)), "a red circle on a white background",
                     "a blue circle on a white background", "zerocon++", 4, None, 3),
            "square": (handle_file(str(source_png)), "a red circle on a white background",
                       "a red square on a white background", "pix2pix-zero", 4, 4.0, 9)}
    alone = {name: np.asarray(Image.open(client.predict(*a, api_name="/edit")[2])) for name, a in args.items()}
    jobs = {name: client.submit(*a, api_name="/edit") for name, a in args.items()}
    together = {name: np.asarray(Image.open(job.result(timeout=300)[2])) for name, job in jobs.items()}
    for name in args:
        assert np.array_equal(alone[name], together[name]), name
    assert not np.array_equal(together["blue"], together["square"])


# --------------------------------------------------------------------------- the command
def test_serve_refuses_bad_flags_and_a_taken_port(capsys) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port: 70000 must be <= 65535" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err
    assert main(["serve", "/no/such/model"]) == 2
    assert "/no/such/model" in capsys.readouterr().err


def test_serve_without_gradio_says_how_to_install(monkeypatch, capsys) -> None:
    import builtins

    real_import = builtins.__import__

    def no_gradio(name, *args, **kwargs):
        if name == "gradio" or name.startswith("gradio."):
            raise ImportError("No module named 'gradio'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gradio)
    assert main(["serve"]) == 2
    assert "pip install 'zerocon[demo]'" in capsys.readouterr().err
