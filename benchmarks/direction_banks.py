"""How close does ``c + Δc`` land to the target caption's embedding, per sentence bank?

Run: ``.venv/bin/python benchmarks/direction_banks.py``

For a few word swaps on the embedded model's text encoder: relative error
``‖(c + Δc) − E(target caption)‖ / ‖E(target caption) − c‖`` with banks of captions only
(``sentence_bank(word)``) and with the templates added (``include_templates=True``).
"""

from __future__ import annotations

from zerocon.direction import EditDirection, encode_prompts
from zerocon.shapes import load_embedded_pipeline, sentence_bank

SWAPS = [
    ("red", "green", "a red circle on a gray background"),
    ("yellow", "red", "a yellow square on a black background"),
    ("circle", "square", "a blue circle on a white background"),
    ("white", "black", "a green triangle on a white background"),
]


def main() -> None:
    pipe = load_embedded_pipeline()
    enc, tok = pipe.text_encoder, pipe.tokenizer
    print("| swap | captions only | captions + templates |\n|---|---|---|")
    for source, target, caption in SWAPS:
        c = encode_prompts(enc, tok, [caption])
        t = encode_prompts(enc, tok, [caption.replace(source, target)])
        errors = []
        for templates in (False, True):
            direction = EditDirection.from_sentences(
                enc, tok, sentence_bank(source, templates), sentence_bank(target, templates)
            )
            errors.append(float((direction.apply_to(c) - t).norm() / (t - c).norm()))
        print(f"| {source}→{target} | {errors[0]:.3f} | {errors[1]:.3f} |")


if __name__ == "__main__":
    main()
