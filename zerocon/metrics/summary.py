"""Summaries of per-edit evaluation rows: means with bootstrap intervals, a table and a plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw


def bootstrap_mean(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval of the finite values (NaNs for none).

    Examples:
        >>> bootstrap_mean([1.0, 1.0, 1.0])
        (1.0, 1.0, 1.0)
    """
    data = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    return float(data.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarize_rows(rows: Sequence[dict[str, Any]], measures: Sequence[str]) -> dict[str, dict[str, Any]]:
    """method → measure → ``(mean, low, high)``, plus ``n`` and the mean ``seconds``.

    Examples:
        >>> summarize_rows([{"method": "a", "psnr": 30.0, "seconds": 1.0}], ["psnr"])["a"]["psnr"][0]
        30.0
    """
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        entry: dict[str, Any] = {"n": len(mine), "seconds": float(np.mean([r.get("seconds", math.nan) for r in mine]))}
        for measure in measures:
            entry[measure] = bootstrap_mean([float(r[measure]) for r in mine if r.get(measure) is not None])
        out[method] = entry
    return out


def summary_table(summary: dict[str, dict[str, Any]], measures: Sequence[str]) -> str:
    """A markdown table: one row per method, each measure as ``mean [low, high]``."""

    def cell(triple: tuple[float, float, float]) -> str:
        mean, low, high = triple
        return "–" if math.isnan(mean) else f"{mean:.3f} [{low:.3f}, {high:.3f}]"

    lines = ["| method | n | " + " | ".join(measures) + " | s/edit |", "|---" * (len(measures) + 3) + "|"]
    for method, entry in summary.items():
        cells = " | ".join(cell(entry[m]) for m in measures)
        lines.append(f"| {method} | {entry['n']} | {cells} | {entry['seconds']:.2f} |")
    return "\n".join(lines)


def pareto_plot(summary: dict[str, dict[str, Any]], x: str, y: str, path: str | Path, size: int = 480) -> Path | None:
    """A scatter of the methods' means (``x`` across, ``y`` up), labelled; ``None`` when no method has both."""
    points = [(m, e[x][0], e[y][0]) for m, e in summary.items() if not (math.isnan(e[x][0]) or math.isnan(e[y][0]))]
    if not points:
        return None
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 60, 20, size - 20, size - 50
    draw.rectangle((left, top, right, bottom), outline="black")
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x0, x1 = (x0 - 1, x1 + 1) if x0 == x1 else (x0 - 0.05 * (x1 - x0), x1 + 0.05 * (x1 - x0))
    y0, y1 = (y0 - 1, y1 + 1) if y0 == y1 else (y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0))
    for method, vx, vy in points:
        px = left + (vx - x0) / (x1 - x0) * (right - left)
        py = bottom - (vy - y0) / (y1 - y0) * (bottom - top)
        draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=(30, 90, 200))
        draw.text((px + 6, py - 6), method, fill="black")
    draw.text((left, bottom + 8), f"{x}: {x0:.3g} … {x1:.3g}", fill="black")
    draw.text((4, top), f"{y}", fill="black")
    draw.text((4, top + 14), f"{y0:.3g} … {y1:.3g}", fill="black")
    target = Path(path)
    image.save(target)
    return target
