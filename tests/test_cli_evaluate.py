"""``zerocon evaluate`` end to end on a small PIE-Bench-format dataset made from the shapes world."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zerocon.cli.main import main
from zerocon.metrics import encode_rle_mask, read_dataset
from zerocon.shapes import embedded_model_path, render_random


def _pie_dataset(root: Path, count: int = 2) -> Path:
    images = root / "annotation_images" / "0_random"
    images.mkdir(parents=True)
    mapping = {}
    for i in range(count):
        source = render_random(torch.Generator().manual_seed(i), color="red", pattern="plain")
        source.to_pil().save(images / f"{i:03d}.png")
        spec = source.spec
        mapping[f"{i:03d}"] = {
            "image_path": f"0_random/{i:03d}.png",
            "original_prompt": source.caption.replace("red", "[red]"),
            "editing_prompt": source.caption.replace("red", "[blue]"),
            "editing_type_id": "0",
            "mask": encode_rle_mask(source.mask),
        }
        assert spec.color == "red"
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    return root


def _tiny_dino(folder: Path) -> Path:
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                       image_size=64, patch_size=8)).save_pretrained(folder)
    return folder


def _random_squeezenet(path: Path) -> Path:
    """A torchvision-layout SqueezeNet 1.1 checkpoint with random weights (a real one is ImageNet's)."""
    from zerocon.metrics.lpips_network import backbone_features

    torch.manual_seed(0)
    torch.save({f"features.{k}": v for k, v in backbone_features("squeeze").state_dict().items()}, path)
    return path


def test_evaluate_runs_resumes_and_summarises(tmp_path, capsys) -> None:
    dataset = _pie_dataset(tmp_path / "pie")
    cases = read_dataset(dataset)
    assert [c.source_prompt.count("[") for c in cases] == [0, 0] and "blue" in cases[0].target_prompt
    out = tmp_path / "eval"
    argv = ["evaluate", str(dataset), "--out", str(out), "--methods", "zerocon++", "sdedit", "--steps", "2",
            "--clip", str(embedded_model_path() / "captioner"), "--dino", str(_tiny_dino(tmp_path / "dino")),
            "--lpips", str(_random_squeezenet(tmp_path / "squeezenet1_1.pth")), "--no-progress"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["method"] for r in rows} == {"zerocon++", "sdedit"}
    for row in rows:
        assert 0.0 <= row["clip_accuracy"] <= 1.0 and row["structure_distance"] >= 0.0
        assert np.isfinite(row["background_psnr"]) and 0.0 < row["background_ssim"] <= 1.0
        assert row["background_lpips"] > 0.0
    assert main(argv) == 0  # resumed: nothing new
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    summary = (out / "summary.md").read_text()
    assert "| zerocon++ | 2 |" in summary and "structure_distance" in summary
    assert (out / "pareto.png").exists() and json.loads((out / "summary.json").read_text())["sdedit"]["n"] == 2


def test_evaluate_names_missing_folders(tmp_path, capsys) -> None:
    dataset = _pie_dataset(tmp_path / "pie", count=1)
    assert main(["evaluate", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "neither mapping_file.json" in capsys.readouterr().err
    assert main(["evaluate", str(dataset), "--out", str(tmp_path / "o"), "--clip", "/no/such/clip"]) == 2
    assert "/no/such/clip" in capsys.readouterr().err
    assert main(["evaluate", str(dataset), "--out", str(tmp_path / "o"), "--lpips", "/no/squeezenet.pth"]) == 2
    assert "/no/squeezenet.pth" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_csv_dataset_reads_its_masks(tmp_path) -> None:
    from PIL import Image

    render_random(torch.Generator().manual_seed(0)).to_pil().save(tmp_path / "a.png")
    Image.new("L", (64, 64), 255).save(tmp_path / "a_mask.png")
    (tmp_path / "prompts.csv").write_text("image,source_prompt,target_prompt,mask\na.png,a cat,a dog,a_mask.png\n")
    (case,) = read_dataset(tmp_path)
    assert case.edit_mask(8, 8).sum().item() == 64.0


@pytest.mark.slow  # heavy (subprocesses): CI runs it in make test-slow
def test_two_processes_split_the_edits(tmp_path) -> None:
    import os
    import subprocess
    import sys

    dataset = _pie_dataset(tmp_path / "pie", count=3)
    out = tmp_path / "eval"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "zerocon.cli", "evaluate", str(dataset), "--out", str(out), "--methods", "sdedit",
               "--steps", "1", "--no-progress"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    ids = [json.loads(line)["edit_id"] for path in out.glob("results-rank*.jsonl") for line in path.read_text().splitlines()]
    assert sorted(ids) == ["000", "001", "002"]  # each edit once, split over two files
    assert len(list(out.glob("results-rank*.jsonl"))) == 2
