"""Outputs of two checkouts on the same edits: did a change alter batch-1 results, and by how much?

Run (here: the commit before batching, fused calls and the faster regulariser, against now)::

    git worktree add /tmp/old 54c92a3
    (cd /tmp/old && PYTHONPATH=/tmp/old /work/main/.venv/bin/python /work/main/benchmarks/compare_outputs.py \\
        edit --root /tmp/old --out /tmp/old.npz)
    .venv/bin/python benchmarks/compare_outputs.py edit --root . --out /tmp/new.npz --settings fuse_unet_calls=false
    .venv/bin/python benchmarks/compare_outputs.py compare /tmp/old.npz /tmp/new.npz

``edit`` runs zerocon and pix2pix-zero on the first two test-split edits of each kind (embedded
model, 20 steps, seed 0, one image per call) and saves the float images; ``compare`` prints how
many are bit-identical and the largest and mean absolute difference in 8-bit units.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def edit(root: Path, out: Path, settings: list[str]) -> None:
    sys.path.insert(0, str(root.resolve()))
    import torch

    import zerocon
    from zerocon.pipelines import ZeroConPipeline
    from zerocon.shapes import embedded_model_path
    from zerocon.shapes.edit_suite import edit_case

    if not Path(zerocon.__file__).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"zerocon was imported from {zerocon.__file__}, not from {root}")
    extra = {}
    for item in settings:
        key, value = item.split("=", 1)
        extra[key] = json.loads(value)
    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    images = {}
    for kind in ("color", "shape", "background", "pattern"):
        for index in range(2):
            case = edit_case("test", kind, index)
            for method in ("zerocon", "pix2pix-zero"):
                result = pipe(case.source.to_pil(), case.target, source_prompt=case.source.caption, method=method,
                              num_inference_steps=20, generator=torch.Generator().manual_seed(0),
                              show_progress=False, output_type="np", **extra)
                images[f"{kind}{index}-{method}"] = result.images[0]
    np.savez(out, **images)


def compare(first: Path, second: Path) -> None:
    a, b = np.load(first), np.load(second)
    differences = [np.abs(a[key] - b[key]) * 255 for key in a.files]
    identical = sum(int((d == 0).all()) for d in differences)
    print(f"{identical} of {len(differences)} images bit-identical; largest difference "
          f"{max(float(d.max()) for d in differences):.4f}, mean {np.mean([d.mean() for d in differences]):.2e} "
          "(8-bit units)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("edit")
    run.add_argument("--root", type=Path, required=True)
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--settings", nargs="*", default=[], help="extra settings as key=JSON value, e.g. fuse_unet_calls=false")
    both = sub.add_parser("compare")
    both.add_argument("first", type=Path)
    both.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "edit":
        edit(args.root, args.out, args.settings)
    else:
        compare(args.first, args.second)


if __name__ == "__main__":
    main()
