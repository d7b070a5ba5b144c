"""The structure benchmark's world pieces (edit cases, SSIM, box IoU, scores) and a smoke run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocon.shapes import parse_caption
from zerocon.shapes.edit_suite import EDIT_TYPES, SPLIT_SEEDS, edit_case, edit_cases
from zerocon.shapes.masks import box_iou, dilate
from zerocon.shapes.ssim import masked_ssim, ssim_map
from zerocon.shapes.structure_score import score_edit

ROOT = Path(__file__).resolve().parents[1]


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(EDIT_TYPES), index=st.integers(0, 300))
def test_a_case_changes_exactly_its_one_word(kind, index) -> None:
    case = edit_case("tuning", kind, index)
    source, target = case.source.caption.split(), case.target.split()
    assert len(source) == len(target)
    assert [(a, b) for a, b in zip(source, target, strict=True) if a != b] == [(case.source_word, case.target_word)]
    parts, wanted = parse_caption(case.source.caption), parse_caption(case.target)
    field = {"color": "color", "shape": "shape", "background": "background", "pattern": "pattern"}[kind]
    assert getattr(parts, field) != getattr(wanted, field)
    again = edit_case("tuning", kind, index)
    assert (again.target, again.seed) == (case.target, case.seed)
    assert (again.source.image == case.source.image).all()


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(("color", "background")), index=st.integers(0, 300))
def test_the_expected_render_changes_only_the_edited_region(kind, index) -> None:
    case = edit_case("test", kind, index)
    assert case.expected is not None and case.expected.caption == case.target
    assert (case.expected.mask == case.source.mask).all()
    same = case.expected.image == case.source.image
    region = ~case.source.mask if kind == "color" else case.source.mask
    # Anti-aliased edge pixels mix both colours; away from the edge the other region is untouched.
    away = region & ~dilate(case.source.mask if kind == "color" else ~case.source.mask, 2)
    assert same[away].all()
    assert score_edit(case, case.expected.image).success
    assert not score_edit(case, case.source.image).success


def test_splits_use_disjoint_seeds() -> None:
    seeds = {split: {c.seed for c in edit_cases(split, 50)} for split in SPLIT_SEEDS}
    assert not seeds["tuning"] & seeds["test"]
    # the fresh test split's whole range lies apart from both older ranges
    assert not (seeds["fresh-test"] & (seeds["tuning"] | seeds["test"]))
    assert min(SPLIT_SEEDS["fresh-test"] - v for v in (SPLIT_SEEDS["tuning"], SPLIT_SEEDS["test"])) >= 4 * 10_000
    assert [c.edit_type for c in edit_cases("test", 1)] == list(EDIT_TYPES)
    with pytest.raises(ValueError, match="unknown split"):
        edit_case("train", "color", 0)
    with pytest.raises(ValueError, match="unknown edit type"):
        edit_case("test", "size", 0)


masks = st.builds(
    lambda r0, c0, h, w: _box(r0, c0, h, w),
    st.integers(0, 10), st.integers(0, 10), st.integers(1, 6), st.integers(1, 6),
)


def _box(r0: int, c0: int, h: int, w: int) -> np.ndarray:
    m = np.zeros((16, 16), bool)
    m[r0:r0 + h, c0:c0 + w] = True
    return m


@given(a=masks, b=masks)
def test_box_iou_is_symmetric_bounded_and_one_on_itself(a, b) -> None:
    assert box_iou(a, b) == pytest.approx(box_iou(b, a))
    assert 0.0 <= box_iou(a, b) <= 1.0
    assert box_iou(a, a) == 1.0
    assert box_iou(a, np.zeros_like(a)) == 0.0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), shift=st.integers(2, 5))
def test_ssim_is_one_on_itself_symmetric_and_low_for_a_shifted_texture(seed, shift) -> None:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (24, 24, 3)).astype(np.uint8)
    other = rng.integers(0, 256, (24, 24, 3)).astype(np.uint8)
    assert np.allclose(ssim_map(img, img), 1.0)
    assert np.allclose(ssim_map(img, other), ssim_map(other, img))
    stripes = np.zeros((24, 24), np.uint8)
    stripes[:, ::6] = 255
    stripes[:, 1::6] = 255
    assert masked_ssim(stripes, np.roll(stripes, 3, axis=1)) < masked_ssim(stripes, stripes) - 0.5
    with pytest.raises(ValueError, match="differ in shape"):
        ssim_map(img, img[:10])


@pytest.mark.slow  # heavy (subprocesses): CI runs it in make test-slow
def test_the_benchmark_runs_resumes_and_reports(tmp_path) -> None:
    out = tmp_path / "smoke.jsonl"
    methods = ["zerocon@blend=auto", "zerocon++", "zerocon", "img2img-0.5"]
    command = [sys.executable, str(ROOT / "benchmarks" / "structure.py"), "--split", "tuning", "--images", "1",
               "--steps", "2", "--methods", *methods, "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 16 and {r["method"] for r in rows} == set(methods)
    assert all(r["unet_evals"] > 0 and r["seconds"] > 0 for r in rows)
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and len(out.read_text().splitlines()) == 16  # resumed: nothing re-run
    goals = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "structure_goals.py"), "--input", str(out), "--steps", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert goals.returncode == 0, goals.stderr[-2000:]
    assert goals.stdout.count("| ") >= 13 and (tmp_path / "smoke_goals.md").exists()
    report = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "structure_report.py"), "--split", "tuning", "--steps", "2",
         "--input", str(out), "--plot", str(tmp_path / "p.png"), "--grid", str(tmp_path / "g.png"),
         "--grid-edits", "tuning-color-000"],
        capture_output=True, text=True, timeout=120,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert "| zerocon@blend=auto | 1 |" in report.stdout
    assert (tmp_path / "p.png").exists() and (tmp_path / "g.png").exists()
