"""Sweep the guidance step size η and the PatchNCE weight on colour edits of the embedded model.

Run: ``.venv/bin/python benchmarks/guidance_sweep.py --methods pix2pix-zero zerocon --step-sizes 1 3 5 --lambda-nce 3 --images 8``

Sources: ``render_random(torch.Generator().manual_seed(100 + i))``; target: the same caption with
the next colour (red→green→blue→yellow→red). 20 DDIM steps by default, every other setting at
the pipeline's default. Prints one line per (method, η, λ_nce): edit accuracy, structure IoU and
background PSNR (capped at 60 dB per edit) over the images.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from zerocon.pipelines import ZeroConPipeline
from zerocon.shapes import OBJECT_COLORS, caption_for, embedded_model_path, render_random
from zerocon.shapes.metrics import edit_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["pix2pix-zero", "zerocon"])
    parser.add_argument("--step-sizes", nargs="+", type=float, default=[1.0, 3.0, 5.0])
    parser.add_argument("--lambda-nce", nargs="+", type=float, default=[3.0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    # A source prompt is always given, so no captioner is needed (skip loading the CLIP).
    pipe = ZeroConPipeline.from_pretrained(embedded_model_path(), captioner=object())
    pipe.set_progress_bar_config(disable=True)
    colors = list(OBJECT_COLORS)
    for method, eta, lam in itertools.product(args.methods, args.step_sizes, args.lambda_nce):
        correct, iou, bg = [], [], []
        for i in range(args.images):
            source = render_random(torch.Generator().manual_seed(100 + i))
            new_color = colors[(colors.index(source.spec.color) + 1) % len(colors)]
            target = caption_for(new_color, source.spec.shape, source.spec.background, source.spec.pattern)
            out = pipe(
                source.to_pil(), target, source_prompt=source.caption, method=method,
                num_inference_steps=args.steps, guidance_step_size=eta, lambda_nce=lam,
                generator=torch.Generator().manual_seed(0), show_progress=False,
            )
            m = edit_metrics(source, out.images[0], target)
            correct.append(m.edit_correct)
            iou.append(m.structure_iou)
            bg.append(min(m.background_psnr, 60.0))
        print(f"{method:13s} eta={eta:<5g} lambda_nce={lam:<4g} acc={np.mean(correct):.2f} "
              f"iou={np.mean(iou):.3f} bg={np.mean(bg):.1f}dB", flush=True)


if __name__ == "__main__":
    main()
