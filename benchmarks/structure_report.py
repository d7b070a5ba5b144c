"""Summaries, Pareto plots and the sample grid of the structure benchmark's JSONL records.

Run: ``.venv/bin/python benchmarks/structure_report.py --split tuning --steps 25``
(``--plot docs/img/structure_pareto.png`` draws the Pareto plots; ``--grid docs/img/structure_grid.png``
the sample grid from the saved images; ``--methods`` keeps and orders the table's rows;
``--common`` keeps only the edits that every listed method has, so all rows share one edit set;
``--compact`` prints one row per method; ``--max-index 8`` keeps the first eight edits of each type).

Every mean carries a 95% bootstrap interval (2,000 resamples of the edits, seed 0). PSNR values
are capped at 60 dB (an identical background would be +inf).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from zerocon.shapes.edit_suite import SPLIT_SEEDS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "structure"
TYPES = ("color", "shape", "background", "pattern")
PSNR_CAP = 60.0


def load(path: Path, steps: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["steps"] == steps]


def mean_ci(values: list[float], resamples: int = 2000) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval (NaN for no values)."""
    data = np.array([min(v, PSNR_CAP) for v in values if v is not None and not math.isnan(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(0)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    return float(data.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def median_ci(values: list[float], resamples: int = 2000) -> tuple[float, float, float]:
    """Median and 95% percentile-bootstrap interval (NaN for no values; ``inf`` kept: no object read)."""
    data = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(0)
    medians = np.median(data[rng.integers(0, data.size, size=(resamples, data.size))], axis=1)
    return float(np.median(data)), float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """method → edit type (and ``"all"``) → measure → (mean, low, high)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], r["edit_type"])].append(r)
        groups[(r["method"], "all")].append(r)
        if r["edit_type"] in ("color", "shape"):
            groups[(r["method"], "object")].append(r)
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (method, kind), rs in groups.items():
        kept = [float(r["texture_kept"]) for r in rs if r["texture_kept"] is not None]
        out[method][kind] = {
            "n": len(rs),
            "success": mean_ci([float(r["success"]) for r in rs]),
            "mask_iou": mean_ci([r["mask_iou"] for r in rs]),
            "background_psnr": mean_ci([r["background_psnr"] for r in rs]),
            "background_ssim": mean_ci([r["background_ssim"] for r in rs]),
            "object_psnr": mean_ci([r["object_psnr"] for r in rs]),
            "texture_kept": mean_ci(kept),
            "clip_acc": mean_ci([float(r["clip_acc"]) for r in rs]),
            "seconds": float(np.mean([r["seconds"] for r in rs])),
            "unet_evals": float(np.mean([r["unet_evals"] for r in rs])),
            # The artefact measures (records from before they existed have none: NaN).
            "strict_success": mean_ci([float(r["strict_success"]) for r in rs if "strict_success" in r]),
            "object_shift": median_ci([r.get("object_shift") for r in rs]),
            "area_ratio": median_ci([r.get("area_ratio") for r in rs]),
            "ring_share": mean_ci([r.get("ring_share") for r in rs]),
            "target_colour_share": mean_ci([r.get("target_colour_share") for r in rs]),
        }
    return out


def fmt(triple: tuple[float, float, float], digits: int = 2) -> str:
    mean, low, high = triple
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def tables(summary: dict[str, dict[str, dict[str, Any]]], methods: list[str]) -> str:
    lines = []
    for kind in (*TYPES, "all"):
        lines += [f"\n**{kind} edits**\n",
                  "| method | n | success | mask IoU | bg PSNR (dB) | bg SSIM | object PSNR (dB) | texture kept | CLIP-Acc | s/edit | UNet evals |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for method in methods:
            s = summary.get(method, {}).get(kind)
            if s is None:
                continue
            lines.append(
                f"| {method} | {s['n']} | {fmt(s['success'])} | {fmt(s['mask_iou'])} | "
                f"{fmt(s['background_psnr'], 1)} | {fmt(s['background_ssim'])} | {fmt(s['object_psnr'], 1)} | "
                f"{fmt(s['texture_kept'])} | {fmt(s['clip_acc'])} | {s['seconds']:.2f} | {s['unet_evals']:.0f} |"
            )
    return "\n".join(lines)


def compact_table(summary: dict[str, dict[str, dict[str, Any]]], methods: list[str]) -> str:
    """One row per method: success overall and per edit type, and the structure measures."""
    lines = [
        "| method | n | success | colour | shape | background | pattern | bg PSNR, object edits (dB) "
        "| object PSNR, scene edits (dB) | mask IoU | s/edit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in methods:
        s = summary.get(method)
        if s is None:
            continue
        kinds = [f"{s[k]['success'][0]:.2f}" if k in s else "–" for k in TYPES]
        scene = [r for k in ("background", "pattern") if k in s for r in [s[k]["object_psnr"][0]]]
        obj = s.get("object", {}).get("background_psnr", (math.nan,))[0]
        def db(value: float) -> str:
            return "–" if math.isnan(value) else f"{value:.1f}"

        lines.append(
            f"| {method} | {s['all']['n']} | {fmt(s['all']['success'])} | {' | '.join(kinds)} | "
            f"{db(obj)} | {db(float(np.mean(scene)) if scene else math.nan)} | {s['all']['mask_iou'][0]:.2f} | "
            f"{s['all']['seconds']:.2f} |"
        )
    return "\n".join(lines)


def artefact_table(summary: dict[str, dict[str, dict[str, Any]]], methods: list[str]) -> str:
    """One row per method: strict success overall and per type, and the artefact measures."""
    lines = [
        "| method | n | strict success | colour | shape | background | pattern | median shift, object edits (px) "
        "| area ratio, object edits | ring share, bg-colour edits | target-colour share, colour edits |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in methods:
        s = summary.get(method)
        if s is None or math.isnan(s["all"]["strict_success"][0]):
            continue
        kinds = [f"{s[k]['strict_success'][0]:.2f}" if k in s else "–" for k in TYPES]
        obj = s.get("object", {})
        lines.append(
            f"| {method} | {s['all']['n']} | {fmt(s['all']['strict_success'])} | {' | '.join(kinds)} | "
            f"{fmt(obj.get('object_shift', (math.nan,) * 3), 1)} | {fmt(obj.get('area_ratio', (math.nan,) * 3))} | "
            f"{fmt(s.get('background', {}).get('ring_share', (math.nan,) * 3))} | "
            f"{fmt(s.get('color', {}).get('target_colour_share', (math.nan,) * 3))} |"
        )
    return "\n".join(lines)


def _family(method: str) -> tuple[int, int, int]:
    if "blend" in method:
        return (200, 120, 0)
    if method.startswith("zerocon"):
        return (30, 90, 200)
    if method.startswith("pix2pix-zero"):
        return (200, 40, 40)
    return (110, 110, 110)


def _short(method: str) -> str:
    return (method.replace("guidance_step_size=", "eta=").replace("lambda_nce=", "nce=")
            .replace("blend_threshold=", "th=").replace("nce_", ""))


def pareto_plot(summary: dict[str, dict[str, dict[str, Any]]], methods: list[str], path: Path) -> None:
    """Two panels over the object (colour and shape) edits: success against background PSNR, and
    against mask IoU.

    Points are numbered; the legend under the panels names them.
    """
    width, height, pad = 560, 420, 60
    shown = [m for m in methods if m in summary and "object" in summary[m]]
    legend_rows = (len(shown) + 2) // 3
    canvas = Image.new("RGB", (2 * width, height + 30 + 14 * legend_rows), "white")
    draw = ImageDraw.Draw(canvas)
    panels = (("background_psnr", "object", "background PSNR (dB), object edits"),
              ("mask_iou", "object", "mask IoU (box IoU for shapes), object edits"))
    for p, (measure, kind, title) in enumerate(panels):
        points = [(k, m, summary[m][kind][measure][0], summary[m][kind]["success"][0]) for k, m in enumerate(shown, 1)]
        points = [pt for pt in points if not math.isnan(pt[2])]
        if not points:
            continue
        xs = [x for _, _, x, _ in points]
        x0, x1 = min(xs), max(xs)
        x0, x1 = x0 - 0.05 * (x1 - x0 + 1e-9), x1 + 0.05 * (x1 - x0 + 1e-9)
        left = p * width
        box = (left + pad, 20, left + width - 20, height - pad + 20)
        draw.rectangle(box, outline="black")
        draw.text((left + pad, height - 20), title, fill="black")
        draw.text((left + 5, 5), "success, object edits", fill="black")
        for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = box[3] - frac * (box[3] - box[1])
            draw.text((left + 25, y - 6), f"{frac:.2f}", fill="black")
        for frac in (0.0, 0.5, 1.0):
            x = box[0] + frac * (box[2] - box[0])
            draw.text((x - 12, box[3] + 4), f"{x0 + frac * (x1 - x0):.2f}", fill="black")
        for k, method, x, y in points:
            px = box[0] + (x - x0) / (x1 - x0) * (box[2] - box[0])
            py = box[3] - y * (box[3] - box[1])
            colour = _family(method)
            draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour)
            draw.text((px + 5, py - 5 - 9 * (k % 2)), str(k), fill=colour)
    for k, method in enumerate(shown, 1):
        row, col = divmod(k - 1, 3)
        draw.text((20 + col * 370, height + 30 + 14 * row), f"{k}: {_short(method)}", fill=_family(method))
    canvas.save(path)


def image_path(images: Path, split: str, steps: int, method: str, edit_id: str) -> Path:
    """Where the runner saves (and the grid finds) one edited image."""
    return images / split / str(steps) / re.sub(r"[^\w.=@+,:-]", "_", method) / f"{edit_id}.png"


def _column_name(method: str) -> str:
    """A grid header of at most 11 characters."""
    name, _, options = method.partition("@")
    name = {"pix2pix-zero": "p2p-zero", "diffusers-pix2pix-zero": "diffusersP0"}.get(name, name)
    if "blend" in options:
        return f"{name}+blend"[:11]
    if "strength" in options:
        return f"{name} {options.split('=')[-1]}"[:11]
    if options:  # another variant: mark it, so it never reads as the plain method
        return f"{name}*"[:11]
    return name[:11]


def sample_grid(images: Path, split: str, steps: int, methods: list[str], edit_ids: list[str], path: Path) -> None:
    """Rows are edits; columns the source then each method (saved images), labelled."""
    from zerocon.shapes.edit_suite import edit_case

    cell, label_h = 64, 14
    canvas = Image.new("RGB", ((len(methods) + 1) * cell, label_h + len(edit_ids) * cell), "white")
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(["source", *methods]):
        draw.text((c * cell + 2, 1), _column_name(name), fill="black")
    for r, edit_id in enumerate(edit_ids):
        split_name, kind, index = edit_id.rsplit("-", 2)
        case = edit_case(split_name, kind, int(index))
        canvas.paste(case.source.to_pil(), (0, label_h + r * cell))
        for c, method in enumerate(methods, start=1):
            file = image_path(images, split, steps, method, edit_id)
            if file.exists():
                canvas.paste(Image.open(file).convert("RGB"), (c * cell, label_h + r * cell))
    canvas = canvas.resize((canvas.width * 2, canvas.height * 2), Image.NEAREST)
    canvas.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=list(SPLIT_SEEDS), default="tuning")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--input", type=Path, default=None, help="JSONL (default: results/structure/<split>.jsonl)")
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--common", action="store_true", help="keep only the edits every listed method has")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--plot-methods", nargs="+", default=None)
    parser.add_argument("--grid", type=Path, default=None)
    parser.add_argument("--grid-edits", nargs="+", default=None)
    parser.add_argument("--compact", action="store_true", help="print one row per method instead")
    parser.add_argument("--max-index", type=int, default=None, help="keep edits whose index is below this")
    args = parser.parse_args()
    source = args.input or RESULTS / f"{args.split}.jsonl"
    rows = load(source, args.steps)
    if args.max_index is not None:
        rows = [r for r in rows if int(r["edit_id"].rsplit("-", 1)[1]) < args.max_index]
    if args.compact:
        summary = summarize(rows)
        print(compact_table(summary, args.methods or sorted(summary)))
        print()
        print(artefact_table(summary, args.methods or sorted(summary)))
        return
    if args.common:
        wanted = set(args.methods or [])
        ids = [{r["edit_id"] for r in rows if r["method"] == m} for m in wanted]
        shared = set.intersection(*ids) if ids else set()
        rows = [r for r in rows if r["edit_id"] in shared]
    summary = summarize(rows)
    methods = args.methods or sorted(summary)
    text = tables(summary, methods) + "\n\n**artefacts**\n\n" + artefact_table(summary, methods)
    print(text)
    # Named after the input: test.jsonl -> test_25_summary.md, test_plus.jsonl -> test_plus_25_summary.md.
    (source.parent / f"{source.stem}_{args.steps}_summary.md").write_text(text + "\n")
    (source.parent / f"{source.stem}_{args.steps}_summary.json").write_text(json.dumps(summary, indent=1))
    if args.plot:
        pareto_plot(summary, args.plot_methods or methods, args.plot)
    if args.grid:
        ids = args.grid_edits or [f"{args.split}-{k}-{i:03d}" for k in TYPES for i in range(2)]
        sample_grid(source.parent / "images", args.split, args.steps, methods, ids, args.grid)


if __name__ == "__main__":
    main()
