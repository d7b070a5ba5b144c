"""The eight serious defects of the v0.2 hostile-input review (S1–S8), each reproduced as it was
reported, with exact exit codes. Rows of docs/cli.md's table."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zerocon.cli.claims import CLAIM_TIMEOUT_SECONDS, OutputClaim, clean_stale
from zerocon.cli.evaluation_identity import RowIdentity
from zerocon.cli.main import main
from zerocon.editing import ModelDefaults
from zerocon.editing.preprocessing import to_rgb
from zerocon.metrics import encode_rle_mask, read_dataset
from zerocon.shapes import embedded_model_path, render_random

SOURCE = "a red circle on a white background"
TARGET = "a blue circle on a white background"
FAST = ["--steps", "1", "--no-progress", "--methods", "sdedit"]


def _run(capsys, argv: list[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


def _render(path: Path, seed: int = 0) -> Path:
    render_random(torch.Generator().manual_seed(seed), color="red", shape="circle", background="white",
                  pattern="plain").to_pil().save(path)
    return path


def _pie(root: Path, count: int = 2, **entry_changes) -> Path:
    images = root / "annotation_images" / "0_random"
    images.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for i in range(count):
        source = render_random(torch.Generator().manual_seed(i), color="red", pattern="plain")
        source.to_pil().save(images / f"{i:03d}.png")
        mapping[f"{i:03d}"] = {"image_path": f"0_random/{i:03d}.png", "original_prompt": source.caption,
                               "editing_prompt": source.caption.replace("red", "blue"),
                               "mask": encode_rle_mask(source.mask), **entry_changes}
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    return root


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------ S1: stale evaluate rows
@settings(max_examples=30, deadline=None)
@given(field=st.sampled_from(["edit_id", "entry", "method", "settings", "model", "seed", "size", "steps", "metrics"]),
       data=st.data())
def test_every_identity_field_changes_the_row_key(field, data) -> None:
    base = RowIdentity("000", "e" * 16, "zerocon", "s" * 16, "m" * 16, 0, 64, 20, "x" * 16)
    values = base.to_dict()
    if isinstance(values[field], int):
        changed = data.draw(st.integers(0, 10**6).filter(lambda v: v != values[field]))
    else:
        changed = data.draw(st.text(min_size=1, max_size=8).filter(lambda v: v != values[field]))
    other = RowIdentity(**{**values, field: changed})
    assert other.key != base.key
    assert base.differences(other.to_dict()) == [f"{field}: {changed!r} → {values[field]!r}"]


def test_a_rerun_with_another_seed_is_refused_then_replaced_never_reported_stale(tmp_path, capsys) -> None:
    dataset, out = _pie(tmp_path / "pie"), tmp_path / "eval"
    assert main(["evaluate", str(dataset), "--out", str(out), *FAST]) == 0
    first = _rows(out)
    assert {r["seed"] for r in first} == {0} and all(r["identity"]["seed"] == 0 for r in first)
    capsys.readouterr()
    code, err, _ = _run(capsys, ["evaluate", str(dataset), "--out", str(out), *FAST, "--seed", "1"])
    assert code == 2 and len(err) == 1 and "seed: 0 → 1" in err[0] and "--overwrite" in err[0]
    assert _rows(out) == first  # nothing was touched
    code, _, printed = _run(capsys, ["evaluate", str(dataset), "--out", str(out), *FAST, "--seed", "1", "--overwrite"])
    assert code == 0 and "2 to run" in printed
    second = _rows(out)
    assert len(second) == 2 and {r["seed"] for r in second} == {1}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sdedit"]["n"] == 2


@pytest.mark.parametrize("change", ["size", "steps", "prompt", "image", "model"])
def test_each_identity_field_of_an_existing_out_is_checked(tmp_path, capsys, change) -> None:
    dataset, out = _pie(tmp_path / "pie", count=1), tmp_path / "eval"
    argv = ["evaluate", str(dataset), "--out", str(out), *FAST]
    assert main(argv) == 0
    capsys.readouterr()
    if change == "size":
        argv += ["--size", "32"]
    elif change == "steps":
        argv += ["--steps", "2"]
    elif change == "prompt":
        mapping = json.loads((dataset / "mapping_file.json").read_text())
        mapping["000"]["editing_prompt"] = mapping["000"]["editing_prompt"].replace("blue", "green")
        (dataset / "mapping_file.json").write_text(json.dumps(mapping))
    elif change == "image":
        _render(dataset / "annotation_images" / "0_random" / "000.png", seed=7)
    else:
        model = tmp_path / "model"
        shutil.copytree(embedded_model_path(), model)
        notes = json.loads((model / "zerocon.json").read_text())
        (model / "zerocon.json").write_text(json.dumps({**notes, "notes": "another copy"}))
        argv += ["--model", str(model)]
    code, err, _ = _run(capsys, argv)
    field = {"prompt": "entry", "image": "entry"}.get(change, change)
    assert code == 2 and len(err) == 1 and f"{field}:" in err[0], err


def test_a_method_whose_settings_changed_is_another_identity(tmp_path, capsys, monkeypatch) -> None:
    from zerocon.editing import unregister_method

    dataset, out = _pie(tmp_path / "pie", count=1), tmp_path / "eval"
    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "variant_method.py"
    argv = ["evaluate", str(dataset), "--out", str(out), "--methods", "variant_method:Variant", "--steps", "1",
            "--no-progress"]
    try:
        for strength, expected in ((0.5, 0), (0.75, 2)):
            module.write_text("from zerocon.editing import SDEditMethod\n\n"
                              "class Variant(SDEditMethod):\n    name = 'variant'\n"
                              f"    defaults = {{'strength': {strength}}}\n")
            sys.modules.pop("variant_method", None)
            code, err, _ = _run(capsys, argv)
            assert code == expected, err
        assert len(err) == 1 and "settings:" in err[0], err
    finally:
        unregister_method("variant")


def test_evaluate_size_limit_and_method_are_bounded_at_parse(tmp_path, capsys) -> None:  # S2
    dataset = _pie(tmp_path / "pie", count=1)
    for option in (["--size", "100000"], ["--size", "-8"], ["--size", "0"], ["--limit", "0"]):
        code, err, _ = _run(capsys, ["evaluate", str(dataset), "--out", str(tmp_path / "o"), *option])
        assert code == 2 and len(err) == 1 and option[0] in err[0], (option, err)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ S3: no tracebacks
@pytest.mark.parametrize("body", ["raise RuntimeError('boom at import')",
                                  "from zerocon.editing import EditMethod\n"
                                  "class Broken(EditMethod):\n    name = 'broken'\n"
                                  "    def __init__(self):\n        raise KeyError('boom in __init__')"])
def test_a_custom_method_that_raises_is_one_line(tmp_path, capsys, monkeypatch, body) -> None:
    (tmp_path / "broken_method.py").write_text(body + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("broken_method", None)
    image = _render(tmp_path / "a.png")
    for argv in (["edit", str(image), "--target", TARGET, "--method", "broken_method:Broken", "--out", str(tmp_path / "o")],
                 ["evaluate", str(_pie(tmp_path / "pie", 1)), "--methods", "broken_method:Broken", "--out", str(tmp_path / "o")]):
        sys.modules.pop("broken_method", None)
        code, err, _ = _run(capsys, argv)
        assert code == 2 and len(err) == 1 and "boom" in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("mask", [[1, 2, 3], [-5, 10], [1e9, 10], [10**9, 10], "abc", [True, 3]])
def test_bad_rle_masks_stop_evaluate_before_out_exists(tmp_path, capsys, mask) -> None:
    dataset = _pie(tmp_path / "pie", count=1, mask=mask)
    code, err, _ = _run(capsys, ["evaluate", str(dataset), "--out", str(tmp_path / "o"), *FAST])
    assert code == 2 and len(err) == 1 and "000" in err[0] and "mask" in err[0], err
    assert not (tmp_path / "o").exists()


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/zerocon-pickle-was-executed",))


@pytest.mark.parametrize("kind", ["junk", "pickle", "safetensors", "text"])
def test_junk_lpips_weights_are_one_line_and_never_executed(tmp_path, capsys, kind) -> None:
    path = tmp_path / ("weights.safetensors" if kind == "safetensors" else "weights.pth")
    marker = Path("/tmp/zerocon-pickle-was-executed")
    marker.unlink(missing_ok=True)
    if kind == "junk":
        path.write_bytes(os.urandom(512))
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(_Exploit()))
    elif kind == "safetensors":
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken json here")
    else:
        torch.save({1: "not a tensor"}, path)
    dataset = _pie(tmp_path / "pie", count=1)
    code, err, _ = _run(capsys, ["evaluate", str(dataset), "--out", str(tmp_path / "o"), "--lpips", str(path), *FAST])
    assert code == 2 and len(err) == 1 and str(path) in err[0], err
    assert not marker.exists() and not (tmp_path / "o").exists()


# ------------------------------------------------------------------ S4: dataset paths confined
@pytest.mark.parametrize("image_path", ["../../x.png", "/etc/passwd", "/no/such/file.png", "0_random/../../../x.png"])
def test_dataset_image_paths_may_not_leave_the_dataset(tmp_path, capsys, image_path) -> None:
    (tmp_path / "x.png").write_bytes((_render(tmp_path / "y.png")).read_bytes())
    dataset = _pie(tmp_path / "a" / "b" / "pie", count=1, image_path=image_path)
    code, err, _ = _run(capsys, ["evaluate", str(dataset), "--out", str(tmp_path / "o"), *FAST])
    assert code == 2 and len(err) == 1 and repr(image_path) in err[0], err
    assert "is not a path inside" in err[0] and "exist" not in err[0]  # nothing said of the target file
    assert not (tmp_path / "o").exists()


def test_a_link_out_of_the_dataset_is_refused(tmp_path) -> None:
    dataset = _pie(tmp_path / "pie", count=1)
    outside = _render(tmp_path / "outside.png")
    (dataset / "annotation_images" / "0_random" / "000.png").unlink()
    (dataset / "annotation_images" / "0_random" / "000.png").symlink_to(outside)
    with pytest.raises(ValueError, match="not a path inside"):
        read_dataset(dataset)


@pytest.mark.parametrize("column", ["image", "mask"])
def test_csv_dataset_paths_are_confined_too(tmp_path, column) -> None:
    _render(tmp_path / "a.png")
    values = {"image": "a.png", "mask": ""}
    values[column] = "../secret.png"
    (tmp_path / "prompts.csv").write_text(
        f"image,source_prompt,target_prompt,mask\n{values['image']},a cat,a dog,{values['mask']}\n")
    with pytest.raises(ValueError, match=rf"row 2: {column} '\.\./secret\.png' is not a path inside"):
        read_dataset(tmp_path)


def test_null_prompts_are_refused_not_read_as_none(tmp_path) -> None:
    dataset = _pie(tmp_path / "pie", count=1, original_prompt=None)
    with pytest.raises(ValueError, match="original_prompt must be non-empty text"):
        read_dataset(dataset)


# ------------------------------------------------------------------ S5: model folder paths confined
@pytest.mark.parametrize("where", ["../../../../etc/passwd", "/etc/passwd", "captioner/../../x"])
def test_model_folder_paths_may_not_leave_the_folder(tmp_path, capsys, where) -> None:
    model = tmp_path / "model"
    shutil.copytree(embedded_model_path(), model)
    config = json.loads((model / "zerocon.json").read_text())
    config["captioner"]["captions"] = where
    (model / "zerocon.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not a path inside the model folder"):
        ModelDefaults.read(model)
    image = _render(tmp_path / "a.png")
    code, err, _ = _run(capsys, ["edit", str(image), "--target", TARGET, "--model", str(model),
                                 "--out", str(tmp_path / "o"), "--steps", "1", "--no-progress"])
    assert code == 2 and len(err) == 1 and "not a path inside the model folder" in err[0], err


# ------------------------------------------------------------------ S6: wide images keep their range
@settings(max_examples=25, deadline=None)
@given(level=st.integers(0, 65535))
def test_16_bit_images_are_scaled_by_their_type_not_their_own_range(level) -> None:
    image = Image.fromarray(np.full((4, 4), level, dtype=np.uint16))
    assert image.mode.startswith("I")
    assert to_rgb(image).getpixel((0, 0)) == (round(level / 65535 * 255),) * 3


def test_an_all_white_16_bit_png_stays_white_and_a_dim_one_dim(tmp_path) -> None:
    white = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    white.save(tmp_path / "white.png")
    with Image.open(tmp_path / "white.png") as handle:
        assert np.asarray(to_rgb(handle)).min() == 255
    dim = np.full((8, 8), 100, dtype=np.uint16)
    dim[0, 0] = 2000
    assert np.asarray(to_rgb(Image.fromarray(dim))).max() == round(2000 / 65535 * 255)


@pytest.mark.parametrize("values", [(0.0, 1.0), (0.0, 255.0), (-0.5, 0.5)])
def test_float_images_are_read_in_0_1_and_refused_outside(values) -> None:
    array = np.linspace(*values, 16, dtype=np.float32).reshape(4, 4)
    image = Image.fromarray(array, mode="F")
    if values == (0.0, 1.0):
        assert np.asarray(to_rgb(image))[..., 0].tolist() == np.round(array * 255).astype(int).tolist()
    else:
        with pytest.raises(ValueError, match="outside its type's range"):
            to_rgb(image)


# ------------------------------------------------------------------ S7 and S8: outputs and claims
EDIT_FAST = ["--steps", "2", "--no-progress", "--method", "sdedit"]


def _edit_args(image: Path, out: Path) -> list[str]:
    return ["edit", str(image), "--source", SOURCE, "--target", TARGET, "--out", str(out), *EDIT_FAST]


def test_a_deleted_output_png_whose_sidecar_remains_is_redone(tmp_path, capsys) -> None:
    image, out = _render(tmp_path / "a.png"), tmp_path / "o"
    assert main(_edit_args(image, out)) == 0
    (png,) = out.glob("*.png")
    png.unlink()
    capsys.readouterr()
    code, err, printed = _run(capsys, _edit_args(image, out))
    assert code == 0 and "1 to edit" in printed and "wrote 1 outputs" in printed, (printed, err)
    assert png.exists() and json.loads(png.with_suffix(".json").read_text())["output"] == str(png)


def _foreign_claim(png: Path, age: float) -> Path:
    claim = png.with_suffix(".claim")
    claim.write_text(f"1 {socket.gethostname()}-old-container 12345\n")
    os.utime(claim, (time.time() - age, time.time() - age))
    return claim


def test_a_claim_of_another_host_is_taken_over_once_it_is_stale(tmp_path, capsys) -> None:
    image, out = _render(tmp_path / "a.png"), tmp_path / "o"
    assert main(_edit_args(image, out)) == 0
    (png,) = out.glob("*.png")
    for path in out.iterdir():
        path.unlink()
    claim = _foreign_claim(png, age=10.0)  # fresh: its owner may run
    capsys.readouterr()
    code, _, printed = _run(capsys, _edit_args(image, out))
    assert code == 0 and "another run is editing it" in printed and not png.exists() and claim.exists()
    assert main([*_edit_args(image, out), "--take-over-claims"]) == 0
    assert png.exists() and not claim.exists()
    png.unlink()
    png.with_suffix(".json").unlink()
    claim = _foreign_claim(png, age=CLAIM_TIMEOUT_SECONDS + 60)  # its owner died long ago
    assert main(_edit_args(image, out)) == 0
    assert png.exists() and not claim.exists()


def test_held_claims_are_refreshed_and_stale_foreign_ones_cleaned(tmp_path, monkeypatch) -> None:
    import zerocon.cli.claims as claims

    monkeypatch.setattr(claims, "HEARTBEAT_SECONDS", 0.05)
    held = OutputClaim(tmp_path / "x-zerocon-0000000000.png")
    assert held.acquire()
    os.utime(held.path, (time.time() - 1000, time.time() - 1000))
    time.sleep(0.5)
    assert claims.claim_age(held.path) < 5  # the heartbeat touched it
    held.release()
    fresh = _foreign_claim(tmp_path / "y-zerocon-0000000000.png", age=5)
    stale = _foreign_claim(tmp_path / "z-zerocon-0000000000.png", age=CLAIM_TIMEOUT_SECONDS + 1)
    assert clean_stale(tmp_path) == [stale] and fresh.exists()
    assert clean_stale(tmp_path, timeout=0) == [fresh]


def test_sigterm_unwinds_like_ctrl_c(tmp_path) -> None:
    image, out = _render(tmp_path / "a.png"), tmp_path / "o"
    command = [sys.executable, "-m", "zerocon.cli", "edit", str(image), "--source", SOURCE, "--target", TARGET,
               "--out", str(out), "--steps", "200", "--no-progress", "--method", "ddim"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(out.glob("*.claim")) and process.poll() is None:
            time.sleep(0.1)
        assert list(out.glob("*.claim")), "the edit never started"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143 and err.strip().splitlines()[-1] == "zerocon: terminated", err[-2000:]
    assert not list(out.glob("*.claim")) and not list(out.glob(".*.tmp")) and not list(out.glob("*.png"))


# ------------------------------------------------ after the review of this work
def test_other_metric_models_are_another_identity(tmp_path, capsys) -> None:
    from zerocon.metrics.lpips_network import backbone_features

    dataset, out = _pie(tmp_path / "pie", count=1), tmp_path / "eval"
    assert main(["evaluate", str(dataset), "--out", str(out), *FAST]) == 0
    torch.manual_seed(0)
    weights = tmp_path / "squeezenet.pth"
    torch.save({f"features.{k}": v for k, v in backbone_features("squeeze").state_dict().items()}, weights)
    capsys.readouterr()
    code, err, _ = _run(capsys, ["evaluate", str(dataset), "--out", str(out), *FAST, "--lpips", str(weights)])
    assert code == 2 and len(err) == 1 and "metrics:" in err[0], err


def test_a_row_cut_off_by_a_killed_run_does_not_swallow_the_next(tmp_path, capsys) -> None:
    dataset, out = _pie(tmp_path / "pie", count=2), tmp_path / "eval"
    assert main(["evaluate", str(dataset), "--out", str(out), *FAST, "--limit", "1"]) == 0
    with (out / "results.jsonl").open("a") as handle:
        handle.write('{"key": "cut-off')  # a killed run's half line, no newline
    capsys.readouterr()
    assert main(["evaluate", str(dataset), "--out", str(out), *FAST]) == 0
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3 and lines[1] == '{"key": "cut-off' and json.loads(lines[2])["edit_id"] == "001"
    assert json.loads((out / "summary.json").read_text())["sdedit"]["n"] == 2


def test_hugging_face_snapshot_links_are_inside_but_a_linked_image_folder_is_not(tmp_path) -> None:
    repo = tmp_path / "datasets--org--pie"
    snapshot = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    _render(repo / "blobs" / "f00d.png")
    (repo / "blobs" / "f00d.png").rename(repo / "blobs" / "f00d")  # the cache names blobs by hash, no suffix
    images = snapshot / "annotation_images"
    images.mkdir(parents=True)
    (images / "0.png").symlink_to(Path("../../../blobs/f00d"))
    source = render_random(torch.Generator().manual_seed(0), color="red", shape="circle", background="white",
                           pattern="plain")
    (snapshot / "mapping_file.json").write_text(json.dumps({"0": {
        "image_path": "0.png", "original_prompt": SOURCE, "editing_prompt": TARGET, "mask": encode_rle_mask(source.mask)}}))
    assert read_dataset(snapshot)[0].image.resolve() == (repo / "blobs" / "f00d").resolve()
    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / "mapping_file.json").write_text((snapshot / "mapping_file.json").read_text())
    (outside / "annotation_images").symlink_to(images)  # the image folder itself links out
    with pytest.raises(ValueError, match="not a path inside"):
        read_dataset(outside)


def test_a_fresh_claim_moved_aside_by_a_racing_run_is_put_back(tmp_path, monkeypatch) -> None:
    import zerocon.cli.claims as claims

    png = tmp_path / "x-zerocon-0000000000.png"
    claim = OutputClaim(png)
    claim.path.write_text("1 other-host 5\n")  # what this run judged stale
    real_rename = os.rename

    def racing(source, target):  # another run took it over between our read and our rename
        Path(source).write_text(f"{os.getpid() + 1} third-host 7\n")
        real_rename(source, target)

    monkeypatch.setattr(claims.os, "rename", racing)
    assert claim._remove_stale() is False
    assert claim.path.read_text().startswith(f"{os.getpid() + 1} third-host")  # put back
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    monkeypatch.setattr(claims.os, "rename", real_rename)
    assert claim._remove_stale() is True and not claim.path.exists()


def test_a_16_bit_upload_keeps_its_range_in_serve(tmp_path) -> None:
    from zerocon.web import load_upload

    Image.fromarray(np.full((16, 16), 30000, dtype=np.uint16)).save(tmp_path / "grey.png")
    image, _ = load_upload(tmp_path / "grey.png")
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (round(30000 / 65535 * 255),) * 3


def test_a_fresh_temporary_file_of_an_unknown_pid_is_left_alone(tmp_path) -> None:
    """It may be a live run's on another host sharing --out: only an old one is removed."""
    dead = 2**22 + 12345  # above the default pid_max: no process here
    fresh = tmp_path / f".x-zerocon-0000000000.png.{dead}.abc123.tmp"
    old = tmp_path / f".y-zerocon-0000000000.png.{dead}.def456.tmp"
    fresh.write_bytes(b"being written elsewhere")
    old.write_bytes(b"left by a killed run")
    os.utime(old, (time.time() - 600, time.time() - 600))
    assert clean_stale(tmp_path) == [old] and fresh.exists()
