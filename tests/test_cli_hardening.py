"""The bad-input and fault table of docs/cli.md: one test per row, exact exit codes."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zerocon.cli.claims import OutputClaim, clean_stale
from zerocon.cli.files import load_image, publish_edit
from zerocon.cli.loading import device_for_rank
from zerocon.cli.main import main
from zerocon.shapes import render_random

SOURCE = "a red circle on a white background"
FAST = ["--steps", "2", "--no-progress", "--method", "sdedit"]


def _render(path: Path, seed: int = 0, **fixed: str) -> Path:
    fixed = {"color": "red", "shape": "circle", "background": "white", "pattern": "plain", **fixed}
    render_random(torch.Generator().manual_seed(seed), **fixed).to_pil().save(path)
    return path


def _huge_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width × height`` (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\0" * 16)
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + idat + iend)
    return path


def _run(capsys, argv: list[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


def _pngs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.png") if not p.name.endswith(("_preview.png", "_attention.png")))


# ---------------------------------------------------------------- numbers checked at parse time
@pytest.mark.parametrize(
    "option",
    [["--guidance-scale", "nan"], ["--guidance-scale", "inf"], ["--step-size", "inf"], ["--step-size", "-1"],
     ["--lambda-nce", "nan"], ["--strength", "0"], ["--steps", "2.5"], ["--steps", "0"], ["--max-pixels", "0"]],
)
def test_bad_numbers_are_one_line_with_exit_code_2(tmp_path, capsys, option) -> None:
    image = _render(tmp_path / "a.png")
    code, err, _ = _run(capsys, ["edit", str(image), "--target", "a cat", "--out", str(tmp_path / "o"), *option])
    assert code == 2 and len(err) == 1 and err[0].startswith("zerocon: error:") and option[0] in err[0]
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- image size, before decoding
@pytest.mark.parametrize("side", [20000, 10000])
def test_an_oversized_image_is_refused_from_its_header(tmp_path, capsys, side) -> None:
    bomb = _huge_png(tmp_path / "bomb.png", side, side)
    code, err, _ = _run(capsys, ["edit", str(bomb), "--target", "a cat", "--out", str(tmp_path / "o"), *FAST])
    assert code == 2 and len(err) == 1 and "--max-pixels" in err[0] and f"{side}x{side}" in err[0]
    assert _pngs(tmp_path / "o") == []
    failed = json.loads((tmp_path / "o" / "failures.json").read_text())["failed"]
    assert [Path(f["input"]).name for f in failed] == ["bomb.png"]


def test_max_pixels_can_be_raised(tmp_path, capsys) -> None:
    image = _render(tmp_path / "a.png")
    args = ["edit", str(image), "--source", SOURCE, "--target", "a blue circle on a white background", *FAST]
    code, err, _ = _run(capsys, [*args, "--out", str(tmp_path / "o1"), "--max-pixels", "1000"])
    assert code == 2 and "4,096 pixels" in err[0]
    code, _, _ = _run(capsys, [*args, "--out", str(tmp_path / "o2"), "--max-pixels", "4096"])
    assert code == 0 and len(_pngs(tmp_path / "o2")) == 1


# ---------------------------------------------------------------- a batch survives a bad item
def test_one_bad_image_fails_alone_and_the_rest_is_edited(tmp_path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _render(folder / "blue.png", color="blue")
    _render(folder / "green.png", color="green")
    _render(folder / "same.png", color="red")  # its caption is the target: nothing to edit
    _huge_png(folder / "huge.png", 5000, 5000)
    target = "a red circle on a white background"
    code, err, out = _run(capsys, ["edit", str(folder), "--target", target, "--out", str(tmp_path / "o"), *FAST])
    assert code == 2
    assert len(err) == 2 and any("same.png" in line and "nothing to edit" in line for line in err)
    assert any("huge.png" in line for line in err)
    assert len(_pngs(tmp_path / "o")) == 2 and "2 failed" in out
    failed = {Path(f["input"]).name for f in json.loads((tmp_path / "o" / "failures.json").read_text())["failed"]}
    assert failed == {"same.png", "huge.png"}


def test_a_phrase_edit_falls_back_to_the_prompt_difference_with_a_notice(tmp_path, capsys) -> None:
    image = _render(tmp_path / "a.png")
    code, _, _ = _run(capsys, ["edit", str(image), "--source", SOURCE, "--target", "a big blue square on a white background",
                               "--out", str(tmp_path / "o"), "--steps", "2", "--no-progress", "--method", "ddim"])
    assert code == 0
    record = json.loads(_pngs(tmp_path / "o")[0].with_suffix(".json").read_text())
    assert any("E(target) - E(caption)" in n for n in record["notices"])


# ---------------------------------------------------------------- whole-run problems: nothing written
@pytest.mark.parametrize("content", [b"junk bytes, not safetensors", "pickle"])
def test_a_direction_file_that_is_not_safetensors_stops_the_run(tmp_path, capsys, content) -> None:
    path = tmp_path / "d.safetensors"
    if content == "pickle":
        torch.save({"delta": torch.zeros(1, 16, 64)}, path)
    else:
        path.write_bytes(content)
    image = _render(tmp_path / "a.png")
    code, err, _ = _run(capsys, ["edit", str(image), "--direction", str(path), "--out", str(tmp_path / "o"), *FAST])
    assert code == 2 and len(err) == 1 and "not a zerocon direction" in err[0]
    assert not (tmp_path / "o").exists()


def test_an_unwritable_grid_stops_the_run_before_any_edit(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    image = _render(tmp_path / "a.png")
    code, err, _ = _run(capsys, ["edit", str(image), "--target", "a cat", "--out", str(tmp_path / "o"),
                                 "--grid", str(blocker / "grid.png"), *FAST])
    assert code == 2 and len(err) == 1 and "grid" in err[0]
    assert not (tmp_path / "o").exists()


def test_direction_out_that_is_a_folder_is_an_error(tmp_path, capsys) -> None:
    code, err, _ = _run(capsys, ["direction", "--source", "red", "--target", "blue", "--out", str(tmp_path)])
    assert code == 2 and len(err) == 1 and "is a folder" in err[0]


# ---------------------------------------------------------------- kills, concurrency, full disks
def test_a_rerun_cleans_up_after_a_killed_run_and_redoes_an_orphan_png(tmp_path, capsys) -> None:
    image, out = _render(tmp_path / "a.png"), tmp_path / "o"
    args = ["edit", str(image), "--source", SOURCE, "--target", "a blue circle on a white background",
            "--out", str(out), *FAST]
    assert main(args) == 0
    (png,) = _pngs(out)
    png.with_suffix(".json").unlink()  # killed between the two renames: a PNG without sidecar
    dead = 2**22 + 12345  # above the default pid_max: never a live process
    partial = out / f".{png.name}.{dead}.abc123.tmp"
    partial.write_bytes(b"partial")
    os.utime(partial, (partial.stat().st_mtime - 600, partial.stat().st_mtime - 600))  # left by a run killed long ago
    (out / "other-zerocon-0000000000.claim").write_text(f"{dead}\n")
    capsys.readouterr()
    assert main(args) == 0
    assert "1 to edit" in capsys.readouterr().out
    assert png.exists() and png.with_suffix(".json").exists()
    assert not list(out.glob(".*.tmp")) and not list(out.glob("*.claim"))


def test_a_claimed_output_is_left_to_its_owner(tmp_path, capsys) -> None:
    image, out = _render(tmp_path / "a.png"), tmp_path / "o"
    args = ["edit", str(image), "--source", SOURCE, "--target", "a blue circle on a white background",
            "--out", str(out), *FAST]
    assert main(args) == 0  # learn the output's name for these settings
    (png,) = _pngs(out)
    for path in out.iterdir():
        path.unlink()
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        png.with_suffix(".claim").write_text(f"{owner.pid}\n")  # another run is on it
        capsys.readouterr()
        assert main(args) == 0
        captured = capsys.readouterr()
        assert "another run is editing it" in captured.out + captured.err
        assert _pngs(out) == []
    finally:
        owner.kill()
        owner.wait()
    assert main(args) == 0  # its owner is gone: the claim is taken over
    assert _pngs(out) == [png] and not png.with_suffix(".claim").exists()


def test_claims_are_exclusive_and_released() -> None:
    import tempfile

    png = Path(tempfile.mkdtemp()) / "x-zerocon-0123456789.png"
    a, b = OutputClaim(png), OutputClaim(png)
    assert a.acquire() and not b.acquire()
    a.release()
    assert b.acquire()
    b.release()
    assert clean_stale(png.parent) == []


def test_a_full_disk_between_png_and_sidecar_leaves_neither_and_names_the_sidecar(tmp_path, monkeypatch) -> None:
    png = tmp_path / "out.png"
    original = Path.write_text

    def full(self, *args, **kwargs):
        if ".json." in self.name:
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    from zerocon.cli.errors import CliError

    with pytest.raises(CliError, match=r"out\.json.*No space left"):
        publish_edit(Image.new("RGB", (8, 8)), {"a": 1}, png)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- odd inputs: a result with a notice
def test_exif_rotation_is_applied_with_a_notice(tmp_path) -> None:
    image = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image.save(tmp_path / "r.jpg", exif=exif.tobytes())
    loaded, notices = load_image(tmp_path / "r.jpg")
    assert loaded.size == (20, 40) and notices == ["EXIF orientation applied"]


def test_an_animated_gif_gives_its_first_frame_with_a_notice(tmp_path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue", "green")]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    loaded, notices = load_image(tmp_path / "a.gif")
    assert loaded.convert("RGB").getpixel((0, 0))[0] > 200 and "3 frames" in notices[0]


def test_a_long_prompt_and_a_long_run_give_notices() -> None:
    from zerocon.editing import editor as editor_module
    from zerocon.pipelines import ZeroConPipeline
    from zerocon.testing import tiny_components

    c = tiny_components()
    pipe = ZeroConPipeline(c.vae, c.text_encoder, c.tokenizer, c.unet, c.scheduler)
    image = Image.new("RGB", (16, 16))
    with pytest.warns(UserWarning, match="longer than the text encoder"):
        out = pipe(image, "a blue circle " * 2000, source_prompt="a red circle", method="ddim",
                   num_inference_steps=2, show_progress=False)
    assert any("cut off" in n for n in out.notices[0])
    old = editor_module.LONG_RUN_STEPS
    editor_module.LONG_RUN_STEPS = 2
    try:
        with pytest.warns(UserWarning, match="very long run"):
            pipe(image, "a blue circle", source_prompt="a red circle", method="sdedit", num_inference_steps=3,
                 show_progress=False)
    finally:
        editor_module.LONG_RUN_STEPS = old


@pytest.mark.usefixtures("unchecked")  # the library's own validation
def test_fractional_steps_in_the_library_are_a_value_error() -> None:
    from zerocon.editing import EditSettings

    with pytest.raises(ValueError, match="whole number"):
        EditSettings(num_inference_steps=2.5)


# ---------------------------------------------------------------- environment
@pytest.mark.slow  # heavy (subprocesses): CI runs it in make test-slow
def test_commands_print_nothing_from_the_libraries_on_stderr(tmp_path) -> None:
    image = _render(tmp_path / "a.png")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for argv in (["direction", "--source", "red", "--target", "blue", "--out", str(tmp_path / "d.safetensors")],
                 ["edit", str(image), "--target", "a blue circle on a white background", "--out", str(tmp_path / "o"), *FAST]):
        done = subprocess.run([sys.executable, "-m", "zerocon.cli.main", *argv], capture_output=True, text=True,
                              env=env, timeout=300)
        assert done.returncode == 0 and done.stderr == "", done.stderr


def test_local_rank_picks_the_device_under_torchrun() -> None:
    assert device_for_rank("cuda", {"LOCAL_RANK": "1", "RANK": "5"}) == "cuda:1"
    assert device_for_rank("cuda:0", {"LOCAL_RANK": "1"}) == "cuda:0"
    assert device_for_rank("cuda", {}) == "cuda"
    assert device_for_rank("cpu", {"LOCAL_RANK": "1"}) == "cpu"
    from zerocon.cli.errors import CliError

    with pytest.raises(CliError, match="LOCAL_RANK"):
        device_for_rank("cuda", {"LOCAL_RANK": "x"})


def test_training_checkpoints_load_without_pickle(tmp_path) -> None:
    from zerocon.shapes.train import TrainConfig, _Log, train_vae

    cfg = TrainConfig.smoke()
    cfg.vae_steps, cfg.checkpoint_every = 2, 2
    train_vae(cfg, tmp_path, _Log(tmp_path / "log.jsonl"))
    state = torch.load(tmp_path / "checkpoints" / "vae.pt", weights_only=True)
    assert state["step"] == 2


def test_a_claim_is_released_only_by_its_owner(tmp_path) -> None:
    png = tmp_path / "x-zerocon-0123456789.png"
    mine = OutputClaim(png)
    assert mine.acquire()
    png.with_suffix(".claim").write_text("1 some-other-host\n")  # replaced by another host's run
    assert not OutputClaim(png).acquire()  # another host's claim is never taken over
    mine.release()
    assert png.with_suffix(".claim").exists()
