"""The zerocon++ goals on the structure benchmark, each met or not, with its 95% interval.

Run (after ``structure.py --split fresh-test --images 32 --steps 25 --out results/structure/fresh_test.jsonl
--methods zerocon++ all``, every peer in both of its forms in the same run):

    .venv/bin/python benchmarks/structure_goals.py --input benchmarks/results/structure/fresh_test.jsonl

Goals (the fresh-data issue's), against the best row of each peer (its own defaults or ours):

* strict success (the checker reads the target, the object within 4 px, for background-colour
  edits less than 0.1 of old background in the ring around the object) at least the best peer
  row's on every edit type, and at least 0.90 overall;
* object edits: background PSNR ≥ 34 dB and a median object shift ≤ 1 px;
* background-colour edits: ring share ≤ 0.05, object PSNR at least img2img 0.5's;
* pattern edits: strict success ≥ 0.85.

A goal on a mean is "met" when the mean reaches it; the interval says how sure that is. The
table is written to ``<input stem>_goals.md`` beside the input. Records written before the
artefact measures existed have none; their goals read "–".
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from structure_report import TYPES, fmt, load, summarize

#: The peers: every method of the run that is not zerocon++ (nor one of its variants).
OURS = "zerocon++"


def _row(goal: str, measured: str, met: bool) -> str:
    return f"| {goal} | {measured} | {'**met**' if met else 'not met'} |"


def _mean(summary: dict[str, Any], method: str, kind: str, measure: str) -> float:
    return summary.get(method, {}).get(kind, {}).get(measure, (math.nan,))[0]


def goals(summary: dict[str, Any], ours: str = OURS) -> list[str]:
    """The goal table's rows."""
    peers = [m for m in summary if not m.startswith(ours)]
    me = summary[ours]
    rows = []
    for kind in TYPES:
        scored = [m for m in peers if not math.isnan(_mean(summary, m, kind, "strict_success"))]
        mine = me[kind]["strict_success"]
        if not scored:
            rows.append(_row(f"{kind} strict success ≥ best peer row", fmt(mine), False))
            continue
        best = max(scored, key=lambda m: _mean(summary, m, kind, "strict_success"))
        theirs = summary[best][kind]["strict_success"]
        rows.append(_row(f"{kind} strict success ≥ best peer row ({best}: {fmt(theirs)})", fmt(mine),
                         mine[0] >= theirs[0]))
    overall = me["all"]["strict_success"]
    rows.append(_row("overall strict success ≥ 0.90", fmt(overall), overall[0] >= 0.90))
    psnr, shift = me["object"]["background_psnr"], me["object"]["object_shift"]
    rows.append(_row("object edits: background PSNR ≥ 34 dB", fmt(psnr, 1), psnr[0] >= 34.0))
    rows.append(_row("object edits: median object shift ≤ 1 px", fmt(shift, 1), shift[0] <= 1.0))
    ring = me["background"]["ring_share"]
    rows.append(_row("background-colour edits: ring share ≤ 0.05", fmt(ring), ring[0] <= 0.05))
    mine, img2img = me["background"]["object_psnr"], summary["img2img-0.5"]["background"]["object_psnr"]
    rows.append(_row(f"background-colour edits: object PSNR ≥ img2img 0.5's ({img2img[0]:.1f} dB)", fmt(mine, 1),
                     mine[0] >= img2img[0]))
    pattern = me["pattern"]["strict_success"]
    rows.append(_row("pattern edits: strict success ≥ 0.85", fmt(pattern), pattern[0] >= 0.85))
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
