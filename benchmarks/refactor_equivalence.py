"""Does a checkout edit exactly like another? Run every method on fixed inputs and save the images.

Used to show that the editing engine (issue 9) reproduces the pre-engine pipeline bit for bit:

    git worktree add /tmp/before 6044ccd
    .venv/bin/python benchmarks/refactor_equivalence.py /tmp/before /tmp/before.npz
    .venv/bin/python benchmarks/refactor_equivalence.py . /tmp/after.npz
    .venv/bin/python benchmarks/refactor_equivalence.py --compare /tmp/before.npz /tmp/after.npz

Both checkouts use their own embedded weights (run it before the weights change); the source
prompt, the sentences and the guidance step size are passed explicitly, so no default of either
version is involved.
"""

from __future__ import annotations

import sys


def run(checkout: str, out: str) -> None:
    sys.path.insert(0, checkout)
    import numpy as np
    import torch

    import zerocon

    assert zerocon.__file__.startswith(__import__("os").path.abspath(checkout)), zerocon.__file__
    from zerocon.pipelines import ZeroConPipeline
    from zerocon.shapes import ShapeSpec, embedded_model_path, render

    class Banks:  # the same sentences in every version (the world's banks changed with it)
        def sentences(self, word: str) -> list[str]:
            return [f"a {word} circle on a white background", f"a {word} square on a gray background",
                    f"a {word} triangle on a black background"]

    pipe = ZeroConPipeline.from_pretrained(embedded_model_path())
    source = render(ShapeSpec("red", "circle", "white", (30.0, 34.0), 12.0)).to_pil()
    images = {}
    for method in ["zerocon", "pix2pix-zero", "ddim", "sdedit"]:
        for kind, kwargs in {
            "words": {"source_word": "red", "target_word": "blue"},
            "prompt": {"target_prompt": "a blue circle on a white background"},
        }.items():
            result = pipe(source, source_prompt="a red circle on a white background", method=method,
                          num_inference_steps=8, guidance_step_size=3.0, sentence_source=Banks(),
                          generator=torch.Generator().manual_seed(3), output_type="np", show_progress=False,
                          **kwargs)
            images[f"{method}-{kind}"] = result.images[0]
    np.savez(out, **images)
    print(f"wrote {len(images)} images to {out}")


def compare(a: str, b: str) -> None:
    import numpy as np

    first, second = np.load(a), np.load(b)
    for key in first:
        print(f"{key:22s} max |diff| = {np.abs(first[key] - second[key]).max():.3g}  "
              f"identical = {np.array_equal(first[key], second[key])}")


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        run(sys.argv[1], sys.argv[2])
