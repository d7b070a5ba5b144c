"""Batched encoding of prompts into full-sequence text embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn
from tqdm.auto import tqdm

from zerocon._module_utils import eval_mode, module_device

_UNSET_MAX_LENGTH = 1_000_000


def check_encoder_tokenizer(text_encoder: nn.Module, tokenizer: Any) -> int:
    """Check that a tokenizer and a text encoder fit together; return the sequence length ``L``.

    Args:
        text_encoder: a CLIP-style text encoder with a ``config`` holding ``vocab_size`` and
            ``max_position_embeddings``.
        tokenizer: a Hugging Face tokenizer with ``model_max_length``.

    Returns:
        ``tokenizer.model_max_length`` (the padded length ``L`` of every encoding).

    Raises:
        ValueError: if the tokenizer has no usable ``model_max_length``, if it is longer than the
            encoder's position table, or if the tokenizer knows more tokens than the encoder's
            vocabulary.

    Examples:
        >>> from zerocon.testing import build_word_tokenizer, tiny_text_encoder
        >>> tok = build_word_tokenizer(["cat"], model_max_length=16)
        >>> check_encoder_tokenizer(tiny_text_encoder(len(tok), max_length=16), tok)
        16
    """
    max_length = getattr(tokenizer, "model_max_length", None)
    if not isinstance(max_length, int) or max_length <= 0 or max_length >= _UNSET_MAX_LENGTH:
        raise ValueError(
            f"tokenizer.model_max_length must be a positive sequence length, got {max_length!r}; "
            "set it to the text encoder's context length (77 for Stable Diffusion's CLIP)"
        )
    config = getattr(text_encoder, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and max_length > positions:
        raise ValueError(
            f"tokenizer.model_max_length ({max_length}) is longer than the text encoder's "
            f"max_position_embeddings ({positions}); the tokenizer and encoder do not belong together"
        )
    vocab_size = getattr(config, "vocab_size", None)
    if isinstance(vocab_size, int) and len(tokenizer) > vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the text encoder's vocabulary has only "
            f"{vocab_size}; the tokenizer and encoder do not belong together"
        )
    return max_length


@torch.no_grad()
def encode_prompts(
    text_encoder: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    batch_size: int = 32,
    show_progress: bool = False,
) -> Float[Tensor, "n l d"]:
    """Encode prompts into the full last hidden state of a text encoder, as Stable Diffusion does.

    Each prompt is padded to ``tokenizer.model_max_length`` (truncated if longer) and encoded
    without an attention mask, exactly like the conditioning of a Stable Diffusion pipeline. The
    encoder runs in eval mode without gradients; its mode is restored afterwards.

    Args:
        text_encoder: a CLIP-style text encoder; ``text_encoder(input_ids)[0]`` must be the last
            hidden state ``(b, L, D)``. An encoder with an ``encode_batch(prompts)`` method
            (such as [`DualTextEncoder`][zerocon.direction.DualTextEncoder]) tokenizes for
            itself and is called with the texts.
        tokenizer: the matching tokenizer.
        prompts: the texts to encode (at least one).
        batch_size: how many prompts go through the encoder at once.
        show_progress: show a tqdm bar over the batches.

    Shape:
        Output: ``(n, L, D)`` with ``n = len(prompts)``, ``L = tokenizer.model_max_length``
        (``L + 1`` rows from a ``DualTextEncoder``).

    Returns:
        The embeddings, on the encoder's device and in its dtype.

    Raises:
        ValueError: for no prompts, a ``batch_size`` below 1, a prompt that is not a string, or
            a tokenizer that does not fit the encoder (see [`check_encoder_tokenizer`][zerocon.direction.check_encoder_tokenizer]).

    Examples:
        >>> from zerocon.testing import build_word_tokenizer, tiny_text_encoder
        >>> tok = build_word_tokenizer(["a", "cat"], model_max_length=16)
        >>> enc = tiny_text_encoder(len(tok), hidden_size=32, max_length=16)
        >>> encode_prompts(enc, tok, ["a cat", "a"]).shape
        torch.Size([2, 16, 32])
    """
    if isinstance(prompts, str):
        raise ValueError("prompts must be a sequence of strings, not a single string")
    if len(prompts) == 0:
        raise ValueError("prompts must hold at least one prompt")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise ValueError(f"prompts[{index}] is {type(prompt).__name__}, expected str")
    max_length = check_encoder_tokenizer(text_encoder, tokenizer)
    device = module_device(text_encoder)

    chunks: list[Tensor] = []
    starts = range(0, len(prompts), batch_size)
    with eval_mode(text_encoder):
        for start in tqdm(starts, desc="encoding prompts", disable=not show_progress):
            batch = list(prompts[start : start + batch_size])
            if hasattr(text_encoder, "encode_batch"):
                chunks.append(text_encoder.encode_batch(batch))  # type: ignore[operator]
                continue
            input_ids = tokenizer(
                batch,
                padding="max_length",
                max_length=max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(device)
            chunks.append(text_encoder(input_ids)[0])
    return torch.cat(chunks, dim=0)
