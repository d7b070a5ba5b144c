"""Sentences sampled from a local causal language model, as pix2pix-zero builds its banks."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from zerocon._module_utils import eval_mode, module_device
from zerocon.direction.sentence_text import dedupe, split_sentences, word_pattern

DEFAULT_PROMPT = "Provide many captions for images containing {word}."


class LanguageModelSentences:
    """A [`SentenceSource`][zerocon.direction.SentenceSource] that samples captions from a causal LM.

    The prompt (with the word filled in) is continued ``num_sentences`` times by ancestral
    sampling. The sampling loop is written out here — not ``model.generate`` — so that every
    random draw goes through ``torch.multinomial(..., generator=generator)``: the same generator
    seed gives the same sentences. The continuations are decoded, split into sentences
    (``split_sentences``), filtered to those that contain
    the word (whole word, case-insensitive) and de-duplicated.

    Args:
        model: a Hugging Face causal LM (``model(input_ids=...)`` returns ``.logits`` of shape
            ``(b, t, vocab)``). It is run in eval mode without gradients; its mode is restored.
        tokenizer: its tokenizer (``__call__`` returning ``input_ids``, ``decode``,
            ``eos_token_id``).
        num_sentences: how many continuations to sample. The number of sentences returned may
            differ: one continuation can hold several sentences, and filtering and
            de-duplication drop some.
        prompt: the prompt; ``{word}`` (or ``{}``) is replaced by the word.
        max_new_tokens: the longest continuation, in tokens.
        batch_size: continuations sampled in parallel.
        generator: the source of randomness. ``None`` creates a fresh, randomly seeded CPU
            generator (irreproducible); pass a seeded one for reproducible sentences. Its state
            advances with every call.
        temperature: softmax temperature (> 0).
        top_k: sample among the ``top_k`` most likely tokens only; ``None`` for the full
            vocabulary.
        use_cache: reuse the model's key/value cache between steps (faster); ``False``
            re-runs the whole sequence every step.
        show_progress: show a tqdm bar over the batches.

    Shape:
        - model logits: ``(B, T, vocab)`` with ``B ≤ batch_size``.
        - ``generate_texts(word)``: ``list[str]`` of length ``num_sentences``;
          ``sentences(word)``: a non-empty ``list[str]`` (its length varies, see above).

    Raises:
        ValueError: for a non-positive count, length, batch size, temperature or ``top_k``, or a
            prompt without a placeholder.

    Examples:
        >>> from transformers import GPT2Config, GPT2LMHeadModel
        >>> from zerocon.testing import build_word_tokenizer
        >>> tok = build_word_tokenizer(["cat"])
        >>> config = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=len(tok),
        ...                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        >>> gen = torch.Generator().manual_seed(0)
        >>> source = LanguageModelSentences(GPT2LMHeadModel(config), tok, num_sentences=3,
        ...                                 max_new_tokens=4, generator=gen)
        >>> source.prompt_for("cat")
        'Provide many captions for images containing cat.'
        >>> len(source.generate_texts("cat"))  # a random LM: gibberish continuations
        3
        >>> from transformers import AutoModelForCausalLM, AutoTokenizer
        >>> lm = AutoModelForCausalLM.from_pretrained("gpt2")  # doctest: +SKIP
        >>> tok = AutoTokenizer.from_pretrained("gpt2")  # doctest: +SKIP
        >>> source = LanguageModelSentences(lm, tok, 50, generator=gen)  # doctest: +SKIP
        >>> source.sentences("cat")[:2]  # doctest: +SKIP
        ['A cat sitting on a window sill.', 'A black cat looking at the camera.']
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        num_sentences: int = 100,
        prompt: str = DEFAULT_PROMPT,
        max_new_tokens: int = 48,
        batch_size: int = 16,
        generator: torch.Generator | None = None,
        *,
        temperature: float = 1.0,
        top_k: int | None = 50,
        use_cache: bool = True,
        show_progress: bool = False,
    ) -> None:
        for name, value in (
            ("num_sentences", num_sentences),
            ("max_new_tokens", max_new_tokens),
            ("batch_size", batch_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1 or None, got {top_k}")
        if "{word}" not in prompt and "{}" not in prompt:
            raise ValueError(
                f"prompt {prompt!r} has no placeholder; write '{{word}}' where the word goes"
            )
        if generator is None:
            generator = torch.Generator()
            generator.seed()
        self.model = model
        self.tokenizer = tokenizer
        self.num_sentences = num_sentences
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.generator = generator
        self.temperature = temperature
        self.top_k = top_k
        self.use_cache = use_cache
        self.show_progress = show_progress
        forward_params = inspect.signature(model.forward).parameters
        # transformers 5 renamed ``past_key_values`` to ``cache``; support both.
        self._cache_arg: str | None = next(
            (name for name in ("cache", "past_key_values") if name in forward_params), None
        )

    def prompt_for(self, word: str) -> str:
        """The prompt with ``word`` filled in.

        Args:
            word: the word (non-empty; stripped).

        Returns:
            The filled prompt.

        Raises:
            ValueError: if ``word`` is empty.
        """
        word = word.strip()
        if not word:
            raise ValueError("word must be a non-empty string")
        return self.prompt.replace("{word}", word).replace("{}", word)

    def _prompt_ids(self, prompt: str, device: torch.device) -> Tensor:
        ids = list(self.tokenizer(prompt).input_ids)
        eos = getattr(self.tokenizer, "eos_token_id", None)
        # A tokenizer that appends an end-of-text token (CLIP, T5-like) would end the text before
        # the continuation starts; drop it.
        if eos is not None and len(ids) > 1 and ids[-1] == eos:
            ids = ids[:-1]
        if not ids:
            raise ValueError(f"the prompt {prompt!r} tokenizes to nothing")
        return torch.tensor([ids], dtype=torch.long, device=device)

    def _next_logits(self, ids: Tensor, cache: Any) -> tuple[Tensor, Any]:
        if self.use_cache and self._cache_arg is not None:
            step_ids = ids if cache is None else ids[:, -1:]
            kwargs: dict[str, Any] = {"use_cache": True}
            if cache is not None:
                kwargs[self._cache_arg] = cache
            out = self.model(input_ids=step_ids, **kwargs)
            new_cache = out.get("cache", None) if hasattr(out, "get") else None
            if new_cache is None:
                new_cache = getattr(out, "past_key_values", None)
            return out.logits[:, -1, :], new_cache
        out = self.model(input_ids=ids)
        return out.logits[:, -1, :], None

    def _sample(self, logits: Tensor) -> Tensor:
        logits = logits.float() / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1).to(self.generator.device)
        tokens = torch.multinomial(probs, 1, generator=self.generator)
        return tokens.to(logits.device)

    @torch.no_grad()
    def _sample_batch(self, prompt_ids: Tensor, n: int) -> list[list[int]]:
        eos = getattr(self.tokenizer, "eos_token_id", None)
        ids = prompt_ids.expand(n, -1).clone()
        finished = torch.zeros(n, dtype=torch.bool, device=ids.device)
        new_tokens: list[Tensor] = []
        cache: Any = None
        for _ in range(self.max_new_tokens):
            logits, cache = self._next_logits(ids, cache)
            token = self._sample(logits)
            new_tokens.append(token.squeeze(1).masked_fill(finished, -1))
            ids = torch.cat([ids, token], dim=1)
            if eos is not None:
                finished |= token.squeeze(1) == eos
                if bool(finished.all()):
                    break
        rows = torch.stack(new_tokens, dim=1).tolist()
        out: list[list[int]] = []
        for row in rows:
            kept: list[int] = []
            for token_id in row:
                if token_id < 0 or token_id == eos:
                    break
                kept.append(token_id)
            out.append(kept)
        return out

    def generate_texts(self, word: str) -> list[str]:
        """Sample ``num_sentences`` raw continuations of the prompt (before splitting/filtering).

        Args:
            word: the word to fill into the prompt.

        Returns:
            The decoded continuations (the prompt itself is not included), one per sample.

        Raises:
            ValueError: if ``word`` is empty.
        """
        prompt = self.prompt_for(word)
        device = module_device(self.model)
        prompt_ids = self._prompt_ids(prompt, device)
        texts: list[str] = []
        sizes = [
            min(self.batch_size, self.num_sentences - start)
            for start in range(0, self.num_sentences, self.batch_size)
        ]
        with eval_mode(self.model):
            for size in tqdm(
                sizes, desc=f"sampling sentences ({word})", disable=not self.show_progress
            ):
                for token_ids in self._sample_batch(prompt_ids, size):
                    texts.append(self.tokenizer.decode(token_ids, skip_special_tokens=True))
        return texts

    def sentences(self, word: str) -> list[str]:
        """Sample, split, filter to sentences containing ``word``, and de-duplicate.

        Args:
            word: the word or phrase.

        Returns:
            The kept sentences, in sampling order.

        Raises:
            ValueError: if ``word`` is empty or no sampled sentence contains it.
        """
        texts = self.generate_texts(word)
        pattern = word_pattern(word)
        candidates = [s for text in texts for s in split_sentences(text)]
        kept = dedupe(s for s in candidates if pattern.search(s))
        if not kept:
            raise ValueError(
                f"none of the {len(candidates)} sentences sampled from {len(texts)} continuations "
                f"contains {word.strip()!r}; raise num_sentences, change the prompt, or use a "
                "stronger language model"
            )
        return kept

    def __repr__(self) -> str:
        name = type(self.model).__name__
        return (
            f"LanguageModelSentences(model={name}, num_sentences={self.num_sentences}, "
            f"prompt={self.prompt!r}, max_new_tokens={self.max_new_tokens})"
        )
