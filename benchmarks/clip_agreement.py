"""How far CLIP accuracy can be trusted: the embedded CLIP against the shapes world's checker.

Every record of the structure benchmark holds both verdicts on the same edited image: the
embedded CLIP's (closer to the target caption than to the source caption) and the analytic
checker's success. Per method: both rates, how often they agree, and Cohen's κ.

Run: ``.venv/bin/python benchmarks/clip_agreement.py --input benchmarks/results/structure/test_plus.jsonl``
(writes ``<input stem>_clip_agreement.md`` beside the input).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def agreement(rows: list[dict]) -> dict[str, float]:
    n = len(rows)
    clip = [bool(r["clip_acc"]) for r in rows]
    check = [bool(r["success"]) for r in rows]
    agree = sum(a == b for a, b in zip(clip, check, strict=True)) / n
    p_clip, p_check = sum(clip) / n, sum(check) / n
    chance = p_clip * p_check + (1 - p_clip) * (1 - p_check)
    kappa = (agree - chance) / (1 - chance) if chance < 1 else 1.0
    false_pass = sum(a and not b for a, b in zip(clip, check, strict=True)) / n
    return {"n": n, "clip": p_clip, "checker": p_check, "agree": agree, "kappa": kappa, "clip_only": false_pass}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.input.read_text().splitlines() if line.strip()]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = ["| method | n | CLIP-Acc | checker success | agreement | Cohen's κ | CLIP says yes, checker no |",
             "|---|---|---|---|---|---|---|"]
    for method in [*methods, "all"]:
        mine = rows if method == "all" else [r for r in rows if r["method"] == method]
        a = agreement(mine)
        lines.append(f"| {method} | {a['n']} | {a['clip']:.2f} | {a['checker']:.2f} | {a['agree']:.2f} | "
                     f"{a['kappa']:.2f} | {a['clip_only']:.2f} |")
    text = "\n".join(lines)
    print(text)
    (args.input.parent / f"{args.input.stem}_clip_agreement.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
