"""The minor defects of the v0.2 hostile-input review: each one line away from right, each a row
of docs/cli.md's table, with exact exit codes."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zerocon.cli.main import main
from zerocon.direction import EditDirection
from zerocon.shapes import embedded_model_path, render_random

SOURCE = "a red circle on a white background"
TARGET = "a blue circle on a white background"


def _run(capsys, argv: list[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


def _render(path: Path) -> Path:
    render_random(torch.Generator().manual_seed(0), color="red", shape="circle", background="white",
                  pattern="plain").to_pil().save(path)
    return path


@pytest.fixture(scope="module")
def pipe():
    from zerocon.pipelines import ZeroConPipeline

    loaded = ZeroConPipeline.from_pretrained(embedded_model_path())
    loaded.set_progress_bar_config(disable=True)
    return loaded


@pytest.mark.parametrize("side", [1, 8])
def test_tiny_images_are_too_small_not_nan(tmp_path, capsys, side) -> None:
    Image.new("RGB", (side, side), (215, 38, 38)).save(tmp_path / "tiny.png")
    code, err, _ = _run(capsys, ["edit", str(tmp_path / "tiny.png"), "--source", SOURCE, "--target", TARGET,
                                 "--out", str(tmp_path / "o"), "--steps", "2", "--no-progress"])
    assert code == 2 and len(err) == 1 and "too small for 'zerocon++'" in err[0] and "16x16 px" in err[0], err
    failed = json.loads((tmp_path / "o" / "failures.json").read_text())["failed"]
    assert len(failed) == 1 and "too small" in failed[0]["error"]


def test_method_names_are_stored_as_registered(tmp_path, capsys) -> None:
    image, out = _render(tmp_path / "a.png"), tmp_path / "o"
    assert main(["edit", str(image), "--source", SOURCE, "--target", TARGET, "--out", str(out), "--steps", "2",
                 "--no-progress", "--method", "SDEdit"]) == 0
    (png,) = out.glob("*.png")
    assert "-sdedit-" in png.name
    sidecar = png.with_suffix(".json")
    assert json.loads(sidecar.read_text())["settings"]["method"] == "sdedit"
    assert main(["edit", "--from-sidecar", str(sidecar), "--out", str(tmp_path / "again"), "--no-progress"]) == 0


def test_a_direction_of_another_model_stops_before_any_image(tmp_path, capsys) -> None:
    EditDirection(torch.ones(1, 5, 7)).save(tmp_path / "other.safetensors")
    images = tmp_path / "in"
    images.mkdir()
    for name in ("a.png", "b.png"):
        _render(images / name)
    code, err, _ = _run(capsys, ["edit", str(images), "--direction", str(tmp_path / "other.safetensors"),
                                   "--source", SOURCE, "--out", str(tmp_path / "o"), "--steps", "2", "--no-progress"])
    assert code == 2 and len(err) == 1 and "another text encoder" in err[0] and "5x7" in err[0], err
    assert not list((tmp_path / "o").glob("*.png")) and not (tmp_path / "o" / "failures.json").exists()


def test_an_all_zero_direction_gives_a_notice(tmp_path, capsys, pipe) -> None:
    length, width = pipe.encode_text([""]).shape[1:]
    EditDirection(torch.zeros(1, length, width)).save(tmp_path / "zero.safetensors")
    code, _, out = _run(capsys, ["edit", str(_render(tmp_path / "a.png")), "--direction",
                                 str(tmp_path / "zero.safetensors"), "--source", SOURCE, "--out", str(tmp_path / "o"),
                                 "--steps", "2", "--no-progress", "--method", "sdedit"])
    assert code == 0 and "is all zeros" in out


def test_a_model_path_that_is_a_file_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    code, err, _ = _run(capsys, ["edit", str(_render(tmp_path / "a.png")), "--target", TARGET, "--model",
                                 str(tmp_path / "model.bin"), "--out", str(tmp_path / "o")])
    assert code == 2 and len(err) == 1 and "is a file; give a model folder" in err[0]
    assert not (tmp_path / "o").exists()


def test_an_unwritable_save_attention_stops_before_out_exists(tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err, _ = _run(capsys, ["edit", str(_render(tmp_path / "a.png")), "--target", TARGET, "--save-attention",
                                 str(blocker / "maps"), "--out", str(tmp_path / "o")])
    assert code == 2 and len(err) == 1 and "--save-attention" in err[0]
    assert not (tmp_path / "o").exists()


def test_a_picture_that_cannot_be_written_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    from zerocon.files import save_image

    def full_disk(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / "x_preview.png")
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_input_is_refused_without_reading_it(tmp_path, capsys) -> None:
    fifo = tmp_path / "input.png"
    os.mkfifo(fifo)
    outcome: dict[str, object] = {}
    worker = threading.Thread(target=lambda: outcome.update(result=_run(capsys, [
        "edit", str(fifo), "--target", TARGET, "--out", str(tmp_path / "o")])), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "reading the pipe hung"
    code, err, _ = outcome["result"]
    assert code == 2 and len(err) == 1 and "not a regular file" in err[0]


def test_demo_images_are_bounded(capsys) -> None:
    code, err, _ = _run(capsys, ["demo", "--images", "1000000000"])
    assert code == 2 and len(err) == 1 and "--images" in err[0] and "1000" in err[0]


def test_evaluate_exits_2_when_an_edit_fails(tmp_path, capsys) -> None:
    from zerocon.metrics import encode_rle_mask

    images = tmp_path / "pie" / "annotation_images"
    images.mkdir(parents=True)
    source = render_random(torch.Generator().manual_seed(0), color="red", pattern="plain")
    source.to_pil().save(images / "0.png")
    mapping = {"0": {"image_path": "0.png", "original_prompt": source.caption,
                     "editing_prompt": source.caption.replace("red", "blue"), "mask": encode_rle_mask(source.mask)}}
    (tmp_path / "pie" / "mapping_file.json").write_text(json.dumps(mapping))
    code, err, _ = _run(capsys, ["evaluate", str(tmp_path / "pie"), "--out", str(tmp_path / "o"), "--methods",
                                   "zerocon++", "--size", "8", "--steps", "1", "--no-progress"])
    assert code == 2 and "too small" in err[0] and "1 edit(s) failed" in err[-1], err


@pytest.mark.parametrize(("argument", "message"), [
    ({"target_prompt": 42}, "target_prompt must be text"),
    ({"target_prompt": "a cat", "generator": 0}, "generator must be a torch.Generator"),
    ({"target_prompt": "a cat", "source_prompt": 5}, "source_prompt must be text"),
    ({"target_prompt": "a cat", "direction": 3}, "direction must be an EditDirection"),
    ({"target_prompt": "a cat", "source_word": 1, "target_word": "b"}, "source_word must be a word"),
])
def test_pipeline_arguments_of_the_wrong_kind_are_named(pipe, unchecked, argument, message) -> None:
    with pytest.raises(TypeError, match=message):
        pipe(Image.new("RGB", (64, 64)), method="sdedit", num_inference_steps=1, show_progress=False, **argument)


def test_the_plain_loss_functions_refuse_nan_like_their_modules(unchecked) -> None:
    from zerocon.losses import auto_correlation_loss, kl_divergence_loss, patch_nce_loss

    bad = torch.randn(1, 4, 8, 8)
    bad[0, 0, 0, 0] = float("nan")
    for call in (lambda: auto_correlation_loss(bad), lambda: kl_divergence_loss(bad),
                 lambda: patch_nce_loss(bad.flatten(2), bad.flatten(2)),
                 lambda: EditDirection(torch.ones(1, 8, 4)).apply_to(bad[0, :, :, :4].reshape(1, 8, 4 * 4)[..., :4])):
        with pytest.raises(ValueError, match="NaN or infinite"):
            call()
    assert np.isfinite(float(kl_divergence_loss(torch.randn(2, 8))))
