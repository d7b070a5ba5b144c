"""Compare the editing methods on the embedded shapes model with exact ground truth.

Run: ``.venv/bin/python benchmarks/edit_methods.py [--images 12] [--steps 50]``

For each seeded source render and each method (same inversion settings, direction and seed):
edit accuracy (the analytic checker reads the target caption exactly), colour/shape/background/
pattern accuracy, whether a textured background kept its orientation and period, structure IoU of the object mask, background PSNR, CLIP-Acc (the embedded CLIP scores
the edit closer to the target caption than to the source caption), seconds per edit and UNet
evaluations. Writes ``benchmarks/results/edit_methods.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from zerocon.pipelines import ZeroConPipeline
from zerocon.shapes import embedded_model_path, load_embedded_clip
from zerocon.shapes.demo_edits import demo_edits
from zerocon.shapes.metrics import edit_metrics

HERE = Path(__file__).resolve().parent
METHODS = ("zerocon", "pix2pix-zero", "ddim", "sdedit")


def clip_prefers_target(clip, processor, image, source: str, target: str) -> bool:
    with torch.no_grad():
        inputs = processor(text=[source, target], images=[image], return_tensors="pt", padding=True)
        logits = clip(**inputs).logits_per_image[0]
    return bool(logits[1] > logits[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "edit_methods.json")
    args = parser.parse_args()

    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    pipe.set_progress_bar_config(disable=True)
    clip, processor = load_embedded_clip()
    rows: dict[str, list[dict]] = defaultdict(list)
    for i, (source, target) in enumerate(demo_edits(args.images, args.seed)):
        for method in args.methods:
            t0 = time.perf_counter()
            out = pipe(
                source.to_pil(), target, source_prompt=source.caption, method=method,
                num_inference_steps=args.steps, generator=torch.Generator().manual_seed(args.seed + i),
            )
            seconds = time.perf_counter() - t0
            image = out.images[0]
            m = edit_metrics(source, image, target)
            rows[method].append({
                **m.as_dict(), "seconds": seconds, "unet_evals": out.unet_evals[0]["total"],
                "clip_acc": clip_prefers_target(clip, processor, image, source.caption, target),
                "source": source.caption, "target": target,
            })
            print(f"[{i}] {method:13s} {target!r}: correct={m.edit_correct} iou={m.structure_iou:.2f} "
                  f"bg={m.background_psnr:.1f}dB {seconds:.1f}s", flush=True)
    summary = {}
    for method, rs in rows.items():
        finite_bg = [r["background_psnr"] for r in rs if np.isfinite(r["background_psnr"])]
        summary[method] = {
            "edits": len(rs),
            "edit_accuracy": float(np.mean([r["edit_correct"] for r in rs])),
            "color_accuracy": float(np.mean([r["color_correct"] for r in rs])),
            "shape_accuracy": float(np.mean([r["shape_correct"] for r in rs])),
            "background_accuracy": float(np.mean([r["background_correct"] for r in rs])),
            "pattern_accuracy": float(np.mean([r["pattern_correct"] for r in rs])),
            "texture_kept": float(np.mean(kept)) if (kept := [r["texture_kept"] for r in rs if r["texture_kept"] is not None]) else float("nan"),
            "clip_acc": float(np.mean([r["clip_acc"] for r in rs])),
            "structure_iou": float(np.mean([r["structure_iou"] for r in rs])),
            "background_psnr": float(np.mean(finite_bg)) if finite_bg else float("inf"),
            "seconds_per_edit": float(np.mean([r["seconds"] for r in rs])),
            "unet_evals_per_edit": float(np.mean([r["unet_evals"] for r in rs])),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                    "torch_threads": torch.get_num_threads(),
                                    "summary": summary, "edits": rows}, indent=2))
    print("\n| method | edit acc | colour | shape | bg | pattern | texture kept | CLIP-Acc | IoU | bg PSNR (dB) | s/edit | UNet evals |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for method, s in summary.items():
        print(f"| {method} | {s['edit_accuracy']:.2f} | {s['color_accuracy']:.2f} | {s['shape_accuracy']:.2f} | "
              f"{s['background_accuracy']:.2f} | {s['pattern_accuracy']:.2f} | {s['texture_kept']:.2f} | "
              f"{s['clip_acc']:.2f} | {s['structure_iou']:.3f} | "
              f"{s['background_psnr']:.1f} | {s['seconds_per_edit']:.2f} | {s['unet_evals_per_edit']:.0f} |")


if __name__ == "__main__":
    main()
