"""The zerocon++ goals on the structure benchmark's test split, each met or not, with its interval.

Run (after ``structure.py --split test --images 24 --steps 25 --out results/structure/test_plus.jsonl
--methods zerocon++ all``):

    .venv/bin/python benchmarks/structure_goals.py --input benchmarks/results/structure/test_plus.jsonl

Goals (from the issue that asked for zerocon++), with the peers rerun in the same run:

* success at least the best peer's on every edit type, and at least 0.85 overall;
* object edits: background PSNR ≥ 34 dB and mask IoU ≥ 0.85 (colour edits ≥ 0.90);
* background and pattern edits: success ≥ 0.80, with object PSNR at least img2img 0.5's;
* no more seconds per edit than zerocon.

A goal on a mean is "met" when the mean reaches it; the 95% bootstrap interval says how sure
that is. The table is written to ``<input stem>_goals.md`` beside the input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from structure_report import TYPES, fmt, load, summarize

#: The peers: every method of the run that is not zerocon++ (nor one of its variants).
OURS = "zerocon++"


def _row(goal: str, measured: str, met: bool) -> str:
    return f"| {goal} | {measured} | {'**met**' if met else 'not met'} |"


def goals(summary: dict[str, Any], ours: str = OURS) -> list[str]:
    """The goal table's rows."""
    peers = [m for m in summary if not m.startswith(ours)]
    me = summary[ours]
    rows = []
    for kind in TYPES:
        best = max(peers, key=lambda m: summary[m].get(kind, {}).get("success", (float("-inf"),))[0])
        mine, theirs = me[kind]["success"], summary[best][kind]["success"]
        rows.append(_row(f"{kind} success ≥ best peer ({best}: {theirs[0]:.2f})", fmt(mine), mine[0] >= theirs[0]))
    overall = me["all"]["success"]
    rows.append(_row("overall success ≥ 0.85", fmt(overall), overall[0] >= 0.85))
    psnr, iou = me["object"]["background_psnr"], me["object"]["mask_iou"]
    rows.append(_row("object edits: background PSNR ≥ 34 dB", fmt(psnr, 1), psnr[0] >= 34.0))
    rows.append(_row("object edits: mask IoU ≥ 0.85", fmt(iou), iou[0] >= 0.85))
    color_iou = me["color"]["mask_iou"]
    rows.append(_row("colour edits: mask IoU ≥ 0.90", fmt(color_iou), color_iou[0] >= 0.90))
    for kind in ("background", "pattern"):
        success = me[kind]["success"]
        rows.append(_row(f"{kind} edits: success ≥ 0.80", fmt(success), success[0] >= 0.80))
        mine, img2img = me[kind]["object_psnr"], summary["img2img-0.5"][kind]["object_psnr"]
        rows.append(_row(f"{kind} edits: object PSNR ≥ img2img 0.5's ({img2img[0]:.1f} dB)", fmt(mine, 1),
                         mine[0] >= img2img[0]))
    seconds, paper = me["all"]["seconds"], summary["zerocon"]["all"]["seconds"]
    rows.append(_row(f"seconds per edit ≤ zerocon's ({paper:.2f})", f"{seconds:.2f}", seconds <= paper))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    summary = summarize(load(args.input, args.steps))
    lines = ["| goal | zerocon++ (95% interval) | |", "|---|---|---|", *goals(summary)]
    text = "\n".join(lines)
    print(text)
    (args.input.parent / f"{args.input.stem}_goals.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
