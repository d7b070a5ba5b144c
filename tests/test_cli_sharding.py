"""Sharding across processes started by torchrun: each image is edited exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from zerocon.shapes import render_random


@pytest.mark.slow  # heavy (subprocesses): CI runs it in make test-slow
def test_torchrun_with_two_processes_edits_each_image_once(tmp_path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for seed in range(4):
        render_random(torch.Generator().manual_seed(seed), pattern="plain").to_pil().save(inputs / f"s{seed}.png")
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "zerocon.cli", "edit", str(inputs), "--target", "a blue circle on a white background",
        "--out", str(out), "--steps", "1", "--method", "sdedit", "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "[rank 0/2]" in run.stdout and "[rank 1/2]" in run.stdout
    sidecars = [json.loads(p.read_text()) for p in out.glob("*.json")]
    edited = sorted(record["input"] for record in sidecars)
    assert edited == sorted(str(p.resolve()) for p in inputs.glob("*.png"))  # each once, none missed
    assert len(list(out.glob("*.png"))) == 4
