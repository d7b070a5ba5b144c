"""A real CLIP BPE tokenizer whose merges spell chosen words as single tokens (built offline)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transformers import CLIPTokenizer

_BYTE_CHARS: list[str] | None = None


def _byte_level_chars() -> list[str]:
    """The 256 printable stand-ins GPT-2/CLIP byte-level BPE uses for raw bytes."""
    global _BYTE_CHARS
    if _BYTE_CHARS is None:
        bs = list(range(ord("!"), ord("~") + 1))
        bs += list(range(ord("¡"), ord("¬") + 1))
        bs += list(range(ord("®"), ord("ÿ") + 1))
        cs = bs[:]
        n = 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        _BYTE_CHARS = [chr(c) for c in cs]
    return _BYTE_CHARS


def build_word_tokenizer(
    words: Iterable[str],
    directory: str | Path | None = None,
    model_max_length: int = 16,
) -> CLIPTokenizer:
    """Build a real CLIP BPE tokenizer whose merges spell each given word as one token.

    Unknown words still tokenize (character by character), exactly as CLIP does.

    Args:
        words: lower-case words that should become single tokens.
        directory: where to write ``vocab.json``/``merges.txt`` (a temporary folder if ``None``).
            Use ``CLIPTokenizer.save_pretrained`` to ship the result.
        model_max_length: the padded sequence length ``L``.

    Returns:
        A ``CLIPTokenizer`` (fast backend in transformers 5).

    Shape:
        ``input_ids`` of one text: ``(n_tokens + 2,)`` (BOS, tokens, EOS); with
        ``padding="max_length"``: ``(model_max_length,)``.

    Examples:
        >>> tok = build_word_tokenizer(["red", "circle"])
        >>> len(tok("a red circle").input_ids) <= 16
        True
    """
    chars = _byte_level_chars()
    vocab: dict[str, int] = {}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    seen_merges: set[tuple[str, str]] = set()
    for word in sorted({w.strip().lower() for w in words if w.strip()}):
        if any(ch.isspace() for ch in word):
            raise ValueError(f"words must not contain whitespace, got {word!r}")
        symbols = [*word[:-1], word[-1] + "</w>"]
        current = symbols[0]
        for nxt in symbols[1:]:
            pair = (current, nxt)
            if pair not in seen_merges:
                seen_merges.add(pair)
                merges.append(pair)
            current = current + nxt
            vocab.setdefault(current, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if directory is None:
        tmp = tempfile.TemporaryDirectory()
        directory = tmp.name
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n", encoding="utf-8"
    )
    tokenizer = CLIPTokenizer(
        vocab=str(folder / "vocab.json"),
        merges=str(folder / "merges.txt"),
        model_max_length=model_max_length,
    )
    if tmp is not None:
        tmp.cleanup()
    return tokenizer


def special_token_ids(vocab_size: int) -> dict[str, Any]:
    """BOS/EOS/pad ids of a [`build_word_tokenizer`][zerocon.testing.build_word_tokenizer] vocabulary (the specials come last).

    Pass them to a ``CLIPTextConfig`` so the encoder pools at the tokenizer's EOS token.

    Examples:
        >>> special_token_ids(600)
        {'bos_token_id': 598, 'eos_token_id': 599, 'pad_token_id': 599}
    """
    return {"bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1, "pad_token_id": vocab_size - 1}
