"""Do two checkouts edit the structure benchmark's cases to the same bytes? (The successor of
``refactor_equivalence.py``: it covers ``zerocon++`` and the suite's four edit types.)

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/output_equivalence.py run /tmp/before /tmp/before.npz
    .venv/bin/python benchmarks/output_equivalence.py run . /tmp/after.npz
    .venv/bin/python benchmarks/output_equivalence.py compare /tmp/before.npz /tmp/after.npz

Each method edits the first four test-split cases of every type (16 edits) at 10 steps, with the
case's seed, through ``ZeroConPipeline`` with the method's preset; the images are kept as uint8
arrays. ``--variants`` (after the output file) adds engine paths the presets do not take
(reference from the inversion, self-attention injection, the tone anchor, unfused calls, the
local blend with a linear schedule). ``compare`` prints one line per method and exits 1 unless
every image is byte-equal.
"""

from __future__ import annotations

import os
import sys

METHODS = ("zerocon", "pix2pix-zero", "zerocon++")
#: With ``--variants``: engine paths the presets do not take, each on the same 16 edits.
VARIANTS: dict[str, tuple[str, dict]] = {
    "zerocon++@reference_from_inversion": ("zerocon++", {"reference_from_inversion": True}),
    "zerocon++@inject_self_attention": ("zerocon++", {"inject_self_attention": 0.5}),
    "zerocon++@tone": ("zerocon++", {"lambda_tone": 1.0}),
    "zerocon@unfused": ("zerocon", {"fuse_unet_calls": False}),
    "zerocon@blend": ("zerocon", {"local_blend": True, "guidance_schedule": "linear"}),
}


def run(checkout: str, out: str, steps: int = 10, per_type: int = 4, variants: bool = False) -> None:
    sys.path.insert(0, os.path.abspath(checkout))
    import numpy as np
    import torch

    import zerocon

    assert zerocon.__file__.startswith(os.path.abspath(checkout)), zerocon.__file__
    from zerocon.pipelines import ZeroConPipeline
    from zerocon.shapes import embedded_model_path
    from zerocon.shapes.edit_suite import edit_cases

    torch.set_num_threads(1)
    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    pipe.set_progress_bar_config(disable=True)
    images = {}
    runs = {method: (method, {}) for method in METHODS}
    if variants:
        runs.update(VARIANTS)
    for case in edit_cases("test", per_type):
        for label, (method, settings) in runs.items():
            edited = pipe(case.source.to_pil(), case.target, source_prompt=case.source.caption,
                          source_word=case.source_word, target_word=case.target_word, method=method,
                          num_inference_steps=steps, generator=torch.Generator().manual_seed(case.seed),
                          show_progress=False, **settings).images[0]
            images[f"{label}|{case.edit_id}"] = np.asarray(edited)
    np.savez_compressed(out, **images)
    print(f"{len(images)} images -> {out}")


def compare(first: str, second: str) -> int:
    import numpy as np

    a, b = np.load(first), np.load(second)
    if set(a.files) != set(b.files):
        print("the two files hold different edits")
        return 1
    same = True
    for method in sorted({k.split("|")[0] for k in a.files}):
        keys = [k for k in a.files if k.startswith(f"{method}|")]
        equal = sum(np.array_equal(a[k], b[k]) for k in keys)
        worst = max(int(np.abs(a[k].astype(int) - b[k].astype(int)).max()) for k in keys)
        print(f"{method:14s} {equal}/{len(keys)} byte-equal, largest pixel difference {worst}")
        same &= equal == len(keys)
    return 0 if same else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run(sys.argv[2], sys.argv[3], variants="--variants" in sys.argv[4:])
    elif sys.argv[1:2] == ["compare"]:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
