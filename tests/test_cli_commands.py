"""``zerocon edit / demo / direction`` on the embedded model at few steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from zerocon.cli.main import main
from zerocon.cli.sharding import process_rank, shard
from zerocon.direction import EditDirection
from zerocon.shapes import render_random

FAST = ["--steps", "2", "--no-progress", "--method", "sdedit"]


def _folder(tmp_path: Path, count: int = 2) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    for i in range(count):
        render_random(
            torch.Generator().manual_seed(i), color="red", shape="circle", background="white"
        ).to_pil().save(folder / f"img{i}.png")
    return folder


def _outputs(out: Path) -> list[Path]:
    return sorted(out.glob("*.png"))


def test_edit_folder_twice_does_the_work_once(tmp_path, capsys) -> None:
    folder, out = _folder(tmp_path), tmp_path / "out"
    args = [
        "edit",
        str(folder),
        "--source-word",
        "red",
        "--target-word",
        "blue",
        "--out",
        str(out),
        "--source",
        "a red circle on a white background",
        *FAST,
    ]
    assert main([*args, "--grid", str(tmp_path / "grid.png")]) == 0
    pngs = _outputs(out)
    assert len(pngs) == 2 and (tmp_path / "grid.png").exists()
    record = json.loads(pngs[0].with_suffix(".json").read_text())
    assert record["parameters"]["method"] == "sdedit" and record["unet_evals"]["total"] > 0
    assert record["metrics"] is not None and "structure_iou" in record["metrics"]
    stamps = [p.stat().st_mtime_ns for p in pngs]
    capsys.readouterr()
    assert main(args) == 0
    assert "2 done already, 0 to edit" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in _outputs(out)] == stamps
    assert not list(out.glob(".*tmp"))
    assert main([*args, "--overwrite"]) == 0
    assert [p.stat().st_mtime_ns for p in _outputs(out)] != stamps


def test_odd_images_are_converted_not_refused(tmp_path, capsys) -> None:
    folder, out = tmp_path / "odd", tmp_path / "out"
    folder.mkdir()
    base = render_random(torch.Generator().manual_seed(0)).to_pil()
    base.convert("L").save(folder / "gray.png")
    base.convert("RGBA").save(folder / "rgba.png")
    base.convert("P").save(folder / "palette.png")
    base.resize((66, 63)).save(folder / "odd_size.png")
    assert (
        main(
            [
                "edit",
                str(folder),
                "--target",
                "a blue circle on a white background",
                "--source",
                "a red circle on a white background",
                "--out",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    assert len(_outputs(out)) == 4
    assert "resized 66x63 to 64x60" in capsys.readouterr().out


def _error(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("zerocon:")]
    assert len(lines) == 1, lines
    return code, lines[0]


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda f, t: ["edit", str(t / "missing.png"), "--target", "a cat"], "does not exist"),
        (lambda f, t: ["edit", str(f), "--target", "  "], "target prompt is empty"),
        (lambda f, t: ["edit", str(f)], "nothing to edit towards"),
        (
            lambda f, t: ["edit", str(f), "--target", "a cat", "--model", str(t / "no_model")],
            "model path",
        ),
        (
            lambda f, t: ["edit", str(f), "--target", "a cat", "--model", "nobody/no-such-model"],
            "Hugging Face Hub",
        ),
        (
            lambda f, t: [
                "edit",
                str(f),
                "--target",
                "a cat",
                "--out",
                str(f / "img0.png" / "sub"),
            ],
            "cannot write to output folder",
        ),
        (
            lambda f, t: [
                "edit",
                str(f),
                "--source-word",
                "red",
                "--target-word",
                "purple",
                "--source",
                "a red circle on a white background",
            ],
            "purple",
        ),
        (
            lambda f, t: [
                "edit",
                str(f),
                "--target",
                "a cat",
                "--direction",
                str(t / "no.safetensors"),
            ],
            "direction file",
        ),
        (
            lambda f, t: ["edit", str(f), "--target", "a cat", "--device", "nonsense"],
            "--device 'nonsense' is not a torch device",
        ),
        (
            lambda f, t: [
                "direction",
                "--source",
                "red",
                "--target",
                "purple",
                "--out",
                str(t / "d.safetensors"),
            ],
            "purple",
        ),
    ],
)
def test_bad_inputs_give_one_line_and_write_nothing(
    tmp_path, capsys, monkeypatch, make_args, message
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = _folder(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    argv = make_args(folder, tmp_path)
    code, err = _error(capsys, [*argv, "--no-progress"] if argv[0] == "edit" else argv)
    assert code == 2
    assert message in err and err.startswith("zerocon: error:")
    assert not (tmp_path / "zerocon-out").exists() or not _outputs(tmp_path / "zerocon-out")
    assert not (tmp_path / "d.safetensors").exists()


def test_corrupt_image_stops_before_any_output(tmp_path, capsys) -> None:
    folder = _folder(tmp_path, 2)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, err = _error(
        capsys, ["edit", str(folder), "--target", "a cat", "--out", str(tmp_path / "o"), *FAST]
    )
    assert code == 2 and "cannot read image" in err and "broken.png" in err
    assert not _outputs(tmp_path / "o")


def test_direction_command_writes_a_loadable_file(tmp_path, capsys) -> None:
    path = tmp_path / "red2blue.safetensors"
    assert main(["direction", "--source", "red", "--target", "blue", "--out", str(path)]) == 0
    direction = EditDirection.load(path)
    assert (direction.source_word, direction.target_word) == ("red", "blue")
    assert main(["direction", "--source", "red", "--target", "blue", "--out", str(path)]) == 0
    assert "skipped" in capsys.readouterr().out
    folder = _folder(tmp_path, 1)
    assert (
        main(
            [
                "edit",
                str(folder),
                "--direction",
                str(path),
                "--source",
                "a red circle on a white background",
                "--out",
                str(tmp_path / "o"),
                "--steps",
                "2",
                "--no-progress",
                "--method",
                "ddim",
            ]
        )
        == 0
    )
    assert len(_outputs(tmp_path / "o")) == 1


def test_demo_writes_grid_and_prints_table(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert (
        main(
            [
                "demo",
                "--out",
                str(out),
                "--images",
                "1",
                "--steps",
                "2",
                "--methods",
                "ddim",
                "sdedit",
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "edit acc" in text and "bg PSNR" in text and "ddim" in text and "sdedit" in text
    grid = Image.open(out / "demo-grid.png")
    assert grid.size[0] > grid.size[1]  # one row: source + 2 methods
    table = json.loads((out / "demo-metrics.json").read_text())["table"]
    assert [r["method"] for r in table] == ["ddim", "sdedit"]
    assert all(r["unet_evals_per_edit"] > 0 for r in table)


def test_sharding_covers_every_item_once() -> None:
    items = list(range(7))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(x for p in parts for x in p) == items
    assert process_rank({}) == (0, 1)
    with pytest.raises(Exception, match="invalid RANK"):
        process_rank({"RANK": "2", "WORLD_SIZE": "2"})


@pytest.mark.slow  # heavy (subprocesses): CI runs it in make test-slow
def test_two_processes_cover_every_input_exactly_once(tmp_path) -> None:
    folder, out = _folder(tmp_path, 5), tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "zerocon.cli",
        "edit",
        str(folder),
        "--source-word",
        "red",
        "--target-word",
        "blue",
        "--out",
        str(out),
        "--steps",
        "1",
        "--no-progress",
        "--method",
        "sdedit",
    ]
    procs = [
        subprocess.Popen(
            cmd,
            env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    inputs = [json.loads(j.read_text())["input"] for j in out.glob("*.json")]
    assert sorted(inputs) == sorted(str(p.resolve()) for p in folder.iterdir())
    assert "[rank 0/2] 3 of 5" in results[0][0] and "[rank 1/2] 2 of 5" in results[1][0]


def test_bad_or_missing_device_is_one_line_with_exit_code_2(tmp_path, capsys) -> None:
    folder = _folder(tmp_path, 1)
    base = ["edit", str(folder), "--target", "a cat", "--out", str(tmp_path / "o"), *FAST]
    code, err = _error(capsys, [*base, "--device", "nonsense"])
    assert code == 2 and "not a torch device" in err
    if not torch.cuda.is_available():
        code, err = _error(capsys, [*base, "--device", "cuda:0"])
        assert code == 2 and "not available on this machine" in err
    code, err = _error(
        capsys, ["demo", "--out", str(tmp_path / "d"), "--images", "1", "--device", "nonsense"]
    )
    assert code == 2 and "not a torch device" in err


def test_written_files_get_the_usual_mode(tmp_path) -> None:
    from zerocon.cli.files import save_image, save_json

    old = os.umask(0o002)
    try:
        save_json({"a": 1}, tmp_path / "x.json")
        save_image(Image.new("RGB", (2, 2)), tmp_path / "x.png")
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o664


def test_edit_decodes_each_input_of_its_share_only_when_editing_it(
    tmp_path, monkeypatch
) -> None:
    import zerocon.cli.edit_command as edit_command
    from zerocon.pipelines import ZeroConPipeline

    folder = _folder(tmp_path, 3)  # img0, img1, img2; rank 1 of 2 owns img1
    events: list[str] = []
    real_load, real_call = edit_command.load_image, ZeroConPipeline.__call__

    def load(path, max_pixels):
        events.append(f"load {path.name}")
        return real_load(path, max_pixels)

    def call(self, image, *args, **kwargs):
        events.append("edit")
        return real_call(self, image, *args, **kwargs)

    monkeypatch.setattr(edit_command, "load_image", load)
    monkeypatch.setattr(ZeroConPipeline, "__call__", call)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    argv = ["edit", str(folder), "--target", "a blue circle on a white background"]
    argv += ["--source", "a red circle on a white background", "--out", str(tmp_path / "o")]
    assert main([*argv, *FAST]) == 0
    assert events == ["load img1.png", "edit"]


def test_corrupt_input_of_another_rank_still_stops_this_rank(tmp_path, capsys, monkeypatch) -> None:
    folder = _folder(tmp_path, 2)
    (folder / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")  # rank 1's share
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, err = _error(
        capsys, ["edit", str(folder), "--target", "a cat", "--out", str(tmp_path / "o"), *FAST]
    )
    assert code == 2 and "cannot read image" in err and "img1.png" in err
    assert not _outputs(tmp_path / "o")


def test_demo_reruns_edits_whose_settings_changed(tmp_path, capsys, monkeypatch) -> None:
    import zerocon.cli.demo_command as demo_command

    built: list[str | None] = []
    real_source = demo_command.sentence_source

    def counting_source(spec, seed=0):
        built.append(spec)
        return real_source(spec, seed)

    monkeypatch.setattr(demo_command, "sentence_source", counting_source)
    out = tmp_path / "demo"
    base = ["demo", "--out", str(out), "--images", "1", "--steps", "2", "--no-progress"]
    base += ["--methods", "ddim", "sdedit", "--sentences", "templates"]
    assert main(base) == 0
    assert built == ["templates"]  # one source for every edit, not one per edit
    first = sorted((out / "edits").glob("*.png"))
    assert len(first) == 2
    stamps = [p.stat().st_mtime_ns for p in first]
    assert main(base) == 0  # same settings: reused
    assert [p.stat().st_mtime_ns for p in sorted((out / "edits").glob("*.png"))] == stamps
    assert main([*base, "--strength", "0.8"]) == 0  # another setting: both edited again
    pngs = sorted((out / "edits").glob("*.png"))
    assert len(pngs) == 4
    new = [json.loads(p.with_suffix(".json").read_text()) for p in pngs if p not in first]
    sdedit = next(r for r in new if r["method"] == "sdedit")
    assert sdedit["parameters"]["resolved"]["strength"] == 0.8 and sdedit["settings"]["strength"] == 0.8
    assert main([*base, "--lambda-nce", "1.0"]) == 0
    assert len(list((out / "edits").glob("*.png"))) == 6


def test_attention_maps_previews_and_a_bit_identical_rerun_from_the_sidecar(tmp_path, capsys) -> None:
    folder, out = _folder(tmp_path, count=1), tmp_path / "out"
    args = ["edit", str(folder), "--target", "a blue circle on a white background", "--out", str(out),
            "--source", "a red circle on a white background", "--steps", "2", "--no-progress",
            "--method", "pix2pix-zero", "--save-attention", str(tmp_path / "maps"), "--preview"]
    assert main(args) == 0
    (png,) = _outputs(out)[:1]
    assert len(list((tmp_path / "maps").glob("*_attention.png"))) == 1
    assert len(list(out.glob("*_preview.png"))) == 1
    sidecar = png.with_suffix(".json")
    again = tmp_path / "again"
    assert main(["edit", "--from-sidecar", str(sidecar), "--out", str(again), "--no-progress"]) == 0
    rerun = again / png.name
    assert rerun.read_bytes() == png.read_bytes()
    first, second = json.loads(sidecar.read_text()), json.loads(rerun.with_suffix(".json").read_text())
    assert first["parameters"]["settings"] == second["parameters"]["settings"]
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--from-sidecar", "missing.json"], "does not exist"),
        (["--from-sidecar", "junk.json"], "not a readable JSON"),
        (["--from-sidecar", "other.json"], "no 'input' and 'settings'"),
        (["--save-attention", "maps", "--method", "ddim", "--target", "a blue circle"], "reference pass"),
    ],
)
def test_sidecar_and_picture_flags_fail_with_exit_code_2(tmp_path, capsys, monkeypatch, extra, message) -> None:
    monkeypatch.chdir(tmp_path)
    Path("junk.json").write_text("{oops")
    Path("other.json").write_text(json.dumps({"hello": 1}))
    inputs = [] if extra[0] == "--from-sidecar" else [str(_folder(tmp_path, count=1))]
    assert main(["edit", *inputs, *extra, "--out", "out", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not Path("out").exists() or not any(Path("out").iterdir())


def test_batch_size_edits_together_what_one_at_a_time_edits_alike(tmp_path, capsys) -> None:
    folder = _folder(tmp_path, count=3)
    render_random(torch.Generator().manual_seed(9), color="red", shape="circle", background="white",
                  size=48).to_pil().save(folder / "other_size.png")
    common = ["edit", str(folder), "--target", "a blue circle on a white background",
              "--source", "a red circle on a white background", "--steps", "2", "--no-progress",
              "--method", "pix2pix-zero", "--save-attention", str(tmp_path / "maps")]
    assert main([*common, "--out", str(tmp_path / "one"), "--batch-size", "1"]) == 0
    assert main([*common, "--out", str(tmp_path / "four"), "--batch-size", "4"]) == 0
    ones, fours = _outputs(tmp_path / "one"), _outputs(tmp_path / "four")
    assert [p.name for p in ones] == [p.name for p in fours] and len(ones) == 4
    for alone, together in zip(ones, fours, strict=True):
        a = torch.tensor(list(Image.open(alone).getdata()), dtype=torch.int16)
        b = torch.tensor(list(Image.open(together).getdata()), dtype=torch.int16)
        assert (a - b).abs().max() <= 2  # float rounding of the larger batch, after 8-bit quantisation
        record = json.loads(together.with_suffix(".json").read_text())
        # One chunk of four; its three 64-px images share one batch, the 48-px one is alone.
        assert record["batch_size"] == (1 if together.name.startswith("other_size") else 3)
        assert record["parameters"]["seed"] == 0  # this image's seed, not the call's list
    maps = sorted(p.name for p in (tmp_path / "maps").glob("*.png"))
    assert maps == sorted(f"{p.stem}_attention.png" for p in fours)  # named by output, not by batch position
    capsys.readouterr()


def test_a_batch_that_fails_for_one_input_is_edited_one_by_one(tmp_path, capsys) -> None:
    import argparse

    from zerocon.cli.edit_command import _edit_claimed
    from zerocon.cli.loading import load_pipeline

    folder = _folder(tmp_path, count=2)
    Image.new("RGB", (64, 64), "red").save(folder / "flat.png")
    real = load_pipeline(None, "cpu")
    calls = []

    def pipe(images, *args, **kwargs):
        calls.append(len(images))
        if any(image.getextrema() == ((255, 255), (0, 0), (0, 0)) for image in images):
            raise ValueError("this pipeline refuses flat red images")
        return real(images, *args, **kwargs)

    args = argparse.Namespace(target="a blue circle on a white background", source="a red circle on a white background",
                              source_word=None, target_word=None, method="sdedit", seed=0, no_progress=True,
                              save_attention=None, preview=False, max_pixels=10**6, steps=2, guidance_scale=5.0,
                              step_size=None, lambda_xa=1.0, lambda_nce=3.0, strength=0.5)
    inputs = sorted(folder.glob("*.png"))
    items = [(path, tmp_path / f"{path.stem}_out.png") for path in inputs]
    failures: dict[Path, str] = {}
    rows = _edit_claimed(args, pipe, items, None, None, {}, failures)
    assert calls == [3, 1, 1, 1] and len(rows) == 2
    assert list(failures) == [folder / "flat.png"] and "refuses flat red" in failures[folder / "flat.png"]
    assert sorted(p.name for p in tmp_path.glob("*_out.png")) == ["img0_out.png", "img1_out.png"]
    capsys.readouterr()
