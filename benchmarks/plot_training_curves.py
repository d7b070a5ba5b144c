"""Draw the loss curves of a training run (``log.jsonl``) into a PNG, with PIL only.

Run: ``.venv/bin/python benchmarks/plot_training_curves.py runs/shapes/log.jsonl docs/img/training_curves.png``
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image, ImageDraw

PANEL_W, PANEL_H, MARGIN = 360, 220, 40


def _smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def _panel(draw: ImageDraw.ImageDraw, x0: int, title: str, steps: list[int], values: list[float], log_y: bool) -> None:
    draw.rectangle([x0, 0, x0 + PANEL_W - 1, PANEL_H - 1], outline=(0, 0, 0))
    draw.text((x0 + 8, 4), title, fill=(0, 0, 0))
    if len(values) < 2:
        return
    ys = [math.log10(max(v, 1e-8)) if log_y else v for v in values]
    lo, hi = min(ys), max(ys)
    hi = hi if hi > lo else lo + 1
    s_max = max(steps) or 1

    def point(s: int, y: float) -> tuple[float, float]:
        return (
            x0 + MARGIN + (PANEL_W - MARGIN - 10) * s / s_max,
            PANEL_H - 20 - (PANEL_H - 50) * (y - lo) / (hi - lo),
        )

    raw = [point(s, y) for s, y in zip(steps, ys, strict=True)]
    draw.line(raw, fill=(190, 190, 230), width=1)
    smooth = [point(s, y) for s, y in zip(steps, _smooth(ys, 20), strict=True)]
    draw.line(smooth, fill=(30, 60, 200), width=2)
    label = (lambda y: f"{10**y:.3g}") if log_y else (lambda y: f"{y:.3g}")
    draw.text((x0 + 2, 24), label(hi), fill=(0, 0, 0))
    draw.text((x0 + 2, PANEL_H - 30), label(lo), fill=(0, 0, 0))
    draw.text((x0 + PANEL_W - 60, PANEL_H - 14), f"step {s_max}", fill=(0, 0, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    records = [json.loads(line) for line in args.log.read_text().splitlines() if line.strip()]
    # A resumed run repeats the steps after its last checkpoint: keep the last record of each step.
    latest = {(r.get("stage"), r.get("step"), r.get("name")): r for r in records}
    records = sorted(latest.values(), key=lambda r: (str(r.get("stage")), r.get("step", 0)))
    panels = [
        ("VAE loss (MSE + KL), log", "vae", "loss", True),
        ("VAE train PSNR (dB)", "vae", "psnr", False),
        ("UNet loss (min-SNR eps MSE), log", "unet", "loss", True),
        ("CLIP loss (CE over captions), log", "clip", "loss", True),
    ]
    image = Image.new("RGB", (PANEL_W * len(panels), PANEL_H), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for i, (title, stage, key, log_y) in enumerate(panels):
        rows = [r for r in records if r.get("stage") == stage and key in r]
        _panel(draw, i * PANEL_W, title, [r["step"] for r in rows], [r[key] for r in rows], log_y)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
