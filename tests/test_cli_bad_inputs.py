"""The 22 defects of the bad-input run: each now ends as its kind of problem should (exact exit codes)."""

from __future__ import annotations

import errno
import json
import os
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zerocon.cli import claims as claims_module
from zerocon.cli.claims import OutputClaim, process_start
from zerocon.cli.files import load_image
from zerocon.cli.main import main
from zerocon.direction import EditDirection
from zerocon.editing import EditSettings
from zerocon.losses import FeatureL2Loss, PatchNCELoss
from zerocon.shapes import render_random
from zerocon.testing import build_word_tokenizer, tiny_text_encoder

TARGET = "a blue circle on a white background"
GUIDED = ["--steps", "2", "--no-progress", "--method", "pix2pix-zero"]


def _render(path: Path, seed: int = 0) -> Path:
    render_random(torch.Generator().manual_seed(seed), color="red", shape="circle", background="white",
                  pattern="plain").to_pil().save(path)
    return path


def _run(capsys, argv: list[str]) -> tuple[int, list[str]]:
    code = main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


def _failures(out: Path) -> list[str]:
    return [f["error"] for f in json.loads((out / "failures.json").read_text())["failed"]]


# ------------------------------------------------------------------ D1: no black image, ever
@pytest.mark.parametrize(("flag", "value"), [
    ("--guidance-scale", "1e308"), ("--step-size", "1e308"), ("--lambda-xa", "1e308"), ("--lambda-nce", "1e308"),
    ("--seed", str(2**64)), ("--max-pixels", "400000000"), ("--steps", "100000"),
])
def test_values_past_their_documented_bound_stop_the_run_naming_the_flag(tmp_path, capsys, flag, value) -> None:
    code, err = _run(capsys, ["edit", str(_render(tmp_path / "a.png")), "--target", TARGET,
                              "--out", str(tmp_path / "o"), *GUIDED, flag, value])
    assert code == 2 and len(err) == 1 and flag in err[0] and "must be <=" in err[0]
    assert not (tmp_path / "o").exists()


def test_a_blown_up_direction_fails_the_image_naming_the_direction(tmp_path, capsys) -> None:
    from zerocon.pipelines import ZeroConPipeline
    from zerocon.shapes import embedded_model_path

    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    direction = pipe.build_direction([("red", "blue")])
    EditDirection(direction.delta * 1e30, source_word="red", target_word="blue").save(tmp_path / "huge.safetensors")
    code, _ = _run(capsys, ["edit", str(_render(tmp_path / "a.png")), "--direction", str(tmp_path / "huge.safetensors"),
                              "--out", str(tmp_path / "o"), *GUIDED])
    assert code == 2 and not list((tmp_path / "o").glob("*.png"))
    (message,) = _failures(tmp_path / "o")
    assert "edit direction" in message and "non-finite or larger" in message


def test_the_library_raises_instead_of_returning_a_black_image(pipe) -> None:
    image = Image.new("RGB", (16, 16), "red")
    for changes, named in [({"guidance_step_size": 9e3, "lambda_xa": 1e6}, "guidance_step_size"),
                           ({"direction_scale": 100.0}, None)]:
        try:
            out = pipe(image, "a blue dog", source_prompt="a red dog", method="pix2pix-zero", num_inference_steps=2,
                       show_progress=False, output_type="np", generator=torch.Generator().manual_seed(0), **changes)
        except ValueError as error:
            assert named is None or named in str(error)
        else:
            assert np.isfinite(out.images).all() and out.images.std() > 0


# ------------------------------------------------------------------ D2, D13: odd images
def test_a_float_tiff_with_a_nan_pixel_fails_that_image(tmp_path, capsys) -> None:
    array = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    array[3, 3] = np.nan
    Image.fromarray(array, mode="F").save(tmp_path / "float_nan.tif")
    good = _render(tmp_path / "good.png")
    code, _ = _run(capsys, ["edit", str(tmp_path / "float_nan.tif"), str(good), "--target", TARGET,
                            "--out", str(tmp_path / "o"), "--steps", "2", "--no-progress", "--method", "sdedit"])
    assert code == 2
    (message,) = _failures(tmp_path / "o")
    assert "NaN" in message and len(list((tmp_path / "o").glob("good-*.png"))) == 1


def test_an_unknown_exif_orientation_claims_no_rotation(tmp_path) -> None:
    image = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 99
    image.save(tmp_path / "r.jpg", exif=exif.tobytes())
    loaded, notices = load_image(tmp_path / "r.jpg")
    assert loaded.size == (40, 20) and notices == []


# ------------------------------------------------------------------ D4, D5: a full disk is one line
def test_a_full_disk_while_claiming_is_one_line_and_leaves_no_temporary_file(tmp_path, capsys, monkeypatch) -> None:
    real = os.fdopen

    class Full:
        def __init__(self, fd, *args, **kwargs) -> None:
            self.handle = real(fd, *args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.handle.close()

        def write(self, _text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    full = Full

    monkeypatch.setattr(claims_module.os, "fdopen", full)
    code, err = _run(capsys, ["edit", str(_render(tmp_path / "a.png")), "--target", TARGET,
                              "--out", str(tmp_path / "o"), *GUIDED])
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0]
    assert not [p for p in (tmp_path / "o").iterdir() if p.suffix in (".tmp", ".claim")]


def test_a_full_disk_while_writing_failures_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    from zerocon.cli import edit_command

    real = edit_command.save_json

    def save_json(data, path):
        if Path(path).name == "failures.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(data, path)

    monkeypatch.setattr(edit_command, "save_json", save_json)
    code, err = _run(capsys, ["edit", str(_render(tmp_path / "a.png")), "--target", TARGET,
                              "--out", str(tmp_path / "o"), "--steps", "2", "--no-progress", "--method", "sdedit",
                              "--max-pixels", "100"])
    assert code == 2 and err[-1].startswith("zerocon: error: No space left on device")
    assert all(line.startswith("zerocon: error:") for line in err)


# ------------------------------------------------------------------ D6: outputs are never inputs
def test_out_may_not_be_the_input_folder(tmp_path, capsys) -> None:
    _render(tmp_path / "a.png")
    code, err = _run(capsys, ["edit", str(tmp_path), "--target", TARGET, "--out", str(tmp_path), *GUIDED])
    assert code == 2 and len(err) == 1 and "input folder" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_outputs_given_back_as_inputs_are_skipped(tmp_path, capsys) -> None:
    source = _render(tmp_path / "a.png")
    out = tmp_path / "o"
    assert _run(capsys, ["edit", str(source), "--target", TARGET, "--out", str(out), *GUIDED])[0] == 0
    (output,) = out.glob("*.png")
    code, err = _run(capsys, ["edit", str(output), "--target", TARGET, "--out", str(out), *GUIDED])
    assert code == 2 and "output of an earlier zerocon run" in err[-1]
    assert len(list(out.glob("*.png"))) == 1


# ------------------------------------------------------------------ D7: a reused pid does not block
def test_a_claim_whose_pid_now_belongs_to_another_program_is_taken_over(tmp_path) -> None:
    png = tmp_path / "x-zerocon-0123456789.png"
    pid = os.getpid()
    if not process_start(pid):
        pytest.skip("no process start times on this system (/proc)")
    png.with_suffix(".claim").write_text(f"{pid} {socket.gethostname()} 1\n")  # same pid, another start
    claim = OutputClaim(png)
    assert claim.acquire()
    claim.release()
    png.with_suffix(".claim").write_text(f"{pid} {socket.gethostname()} {process_start(pid)}\n")
    assert not OutputClaim(png).acquire()  # the true owner keeps it


# ------------------------------------------------------------------ D8: the documented phrase edit
def test_phrase_words_fall_back_to_the_prompt_difference(tmp_path, capsys) -> None:
    code, _ = _run(capsys, ["edit", str(_render(tmp_path / "a.png")), "--source", "a red circle on a white background",
                            "--source-word", "red circle", "--target-word", "big blue square",
                            "--out", str(tmp_path / "o"), *GUIDED])
    assert code == 0
    (png,) = (tmp_path / "o").glob("*.png")
    assert any("E(target) - E(caption)" in n for n in json.loads(png.with_suffix(".json").read_text())["notices"])


# ------------------------------------------------------------------ D11: whole-run problems write nothing
@pytest.mark.parametrize("option", [["--device", "bogus"], ["--model", "/no/such/model"],
                                    ["--sentences", "/no/such.txt"]])
def test_whole_run_problems_create_no_output_folder(tmp_path, capsys, option) -> None:
    code, err = _run(capsys, ["edit", str(_render(tmp_path / "a.png")), "--target", TARGET,
                              "--out", str(tmp_path / "o"), *GUIDED, *option])
    assert code == 2 and len(err) == 1
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ D12: the library names the parameter
@pytest.mark.parametrize(("changes", "named"), [
    ({"method": "bogus"}, "unknown method"), ({"cross_attention_layers": "("}, "cross_attention_layers"),
    ({"patch_nce_layers": "[a-"}, "patch_nce_layers"),
])
def test_settings_refuse_what_would_fail_later(changes, named) -> None:
    with pytest.raises(ValueError, match=named):
        EditSettings(**changes)


@pytest.mark.parametrize("loss", [PatchNCELoss(num_patches=4), FeatureL2Loss(num_patches=4)])
def test_feature_losses_refuse_nan_and_empty_features(loss, unchecked) -> None:
    good = torch.randn(1, 8, 4)
    bad = good.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        loss([bad], [good])
    with pytest.raises(ValueError, match="no channels"):
        loss([torch.zeros(1, 8, 0)], [torch.zeros(1, 8, 0)])


def test_a_zero_direction_warns() -> None:
    tok = build_word_tokenizer(["a", "red", "blue"], model_max_length=8)
    encoder = tiny_text_encoder(len(tok), hidden_size=16, max_length=8)
    with pytest.warns(UserWarning, match="direction is zero"):
        EditDirection.from_words(encoder, tok, "red", "red")
    with pytest.warns(UserWarning, match="direction is zero"):
        EditDirection.from_sentences(encoder, tok, [""], [""])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EditDirection.from_words(encoder, tok, "red", "blue")
