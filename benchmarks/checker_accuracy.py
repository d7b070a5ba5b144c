"""How often the analytic checker reads fresh renders right, per attribute.

Run: ``.venv/bin/python benchmarks/checker_accuracy.py [--n 2000] [--seed 7]``
Writes ``benchmarks/results/checker_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from zerocon.shapes import PATTERNS, read_shape, render_random
from zerocon.shapes.texture import ORIENTATION_STEP, orientation_period

HERE = Path(__file__).resolve().parent
ATTRIBUTES = ("color", "shape", "background", "pattern")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "checker_accuracy.json")
    args = parser.parse_args()
    g = torch.Generator().manual_seed(args.seed)
    right = dict.fromkeys(ATTRIBUTES, 0)
    by_pattern = {p: {"n": 0, "right": 0} for p in PATTERNS}
    turn_step = turn_exact = period_ok = textured = 0
    ious: list[float] = []
    t0 = time.perf_counter()
    for _ in range(args.n):
        shape = render_random(g)
        reading = read_shape(shape.image)
        for key in ATTRIBUTES:
            right[key] += getattr(reading, key) == getattr(shape.spec, key)
        by_pattern[shape.spec.pattern]["n"] += 1
        by_pattern[shape.spec.pattern]["right"] += reading.pattern == shape.spec.pattern
        ious.append(float((reading.mask & shape.mask).sum() / (reading.mask | shape.mask).sum()))
        texture = shape.spec.texture
        if texture.pattern != "plain":
            textured += 1
            period = orientation_period(texture.pattern)
            turn = abs((reading.orientation - texture.orientation + period / 2) % period - period / 2)
            turn_step += turn <= ORIENTATION_STEP
            turn_exact += turn < ORIENTATION_STEP / 2
            period_ok += abs(reading.period - texture.period) <= 0.1 * texture.period
    result = {
        "n": args.n,
        "seed": args.seed,
        "accuracy": {k: v / args.n for k, v in right.items()},
        "pattern_by_truth": {p: c["right"] / max(c["n"], 1) for p, c in by_pattern.items()},
        "textured": textured,
        "orientation_within_one_step": turn_step / textured,
        "orientation_nearest_step": turn_exact / textured,
        "period_within_10_percent": period_ok / textured,
        "mask_iou_mean": float(np.mean(ious)),
        "seconds_per_image": (time.perf_counter() - t0) / args.n,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
