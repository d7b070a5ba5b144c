"""``EditDirection``: the text-embedding offset Δc that turns a source concept into a target."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from zerocon.direction.encoding import check_encoder_tokenizer, encode_prompts
from zerocon.direction.sentence_source import SentenceSource
from zerocon.direction.template_sentences import TemplateSentences

TENSOR_KEY = "delta"
"""The safetensors key that holds Δc."""

FORMAT_NAME = "zerocon.EditDirection"
FORMAT_VERSION = "1"


def encoder_family(name: str) -> str | None:
    """The family a multi-encoder name starts with (``"sd3[...]"`` → ``"sd3"``); ``None`` for a plain name.

    Examples:
        >>> encoder_family("sd3[clip-l|clip-g|no-t5]"), encoder_family("stable-diffusion-v1-5")
        ('sd3', None)
    """
    head, bracket, _ = str(name).partition("[")
    return head if bracket and head else None


def check_direction_encoder(direction_name: str, text_encoder: nn.Module) -> None:
    """Refuse a direction built by another family of text encoders (SDXL's, SD3's, FLUX's, or a plain CLIP).

    Names without a family (a plain CLIP encoder, or a direction saved before families were
    recorded) are left to the shape check of ``apply_to``.

    Raises:
        ValueError: naming both encoders.

    Examples:
        >>> check_direction_encoder("sd3[a|b|no-t5]", nn.Identity())  # a plain encoder: no family to compare
    """
    ours = _encoder_name(text_encoder)
    theirs, mine = encoder_family(direction_name), encoder_family(ours)
    if theirs is not None and mine is not None and theirs != mine:
        raise ValueError(f"this edit direction was built by another model's text encoders ({direction_name}); "
                         f"this model encodes with {ours}: build the direction with this model")


def _encoder_name(text_encoder: nn.Module) -> str:
    """The encoder's model name: a hub id as given, a local folder by its last part (never a path).

    An encoder of several encoders (SDXL's, SD3's, FLUX's) names them all with its family:
    ``sd3[clip-l|clip-g|t5]``.
    """
    own = getattr(text_encoder, "encoder_name", None)
    if isinstance(own, str) and own:
        return own
    config = getattr(text_encoder, "config", None)
    name = str(getattr(config, "_name_or_path", "") or "")
    if not name:
        return type(text_encoder).__name__
    path = Path(name).expanduser()
    if path.is_absolute() or name.startswith((".", "~")) or path.exists():
        # A local folder: diffusers' layout names the model's folder, not ".../text_encoder".
        parts = [part for part in path.parts if part not in ("/", "text_encoder", "text_encoder_2")]
        return parts[-1] if parts else type(text_encoder).__name__
    return name


def _clean_word(word: str | None, what: str) -> str | None:
    if word is None:
        return None
    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"{what} must be a non-empty string (or None), got {word!r}")
    return word.strip()


def _check_sentences(sentences: Sequence[str], what: str) -> list[str]:
    if isinstance(sentences, str):
        raise ValueError(f"{what} must be a sequence of strings, not a single string")
    if len(sentences) == 0:
        raise ValueError(f"{what} is empty; at least one sentence is needed")
    return list(sentences)


class EditDirection(nn.Module):
    """The edit direction Δc = mean E(target sentences) − mean E(source sentences).

    ``E`` is the pipeline's own text encoder and ``E(s)`` the full ``(L, D)`` hidden-state
    sequence, so Δc has shape ``(1, L, D)`` and is added at every token position:
    ``c_edit = c + scale · Δc`` (pix2pix-zero, method §3).

    Δc is a buffer (it moves with ``.to(device)`` and is saved in ``state_dict``) kept in
    float32; [`apply_to`][zerocon.direction.EditDirection.apply_to] casts it to the embeddings' device and dtype.

    Args:
        delta: the direction, shape ``(1, L, D)``.
        source_word: the concept edited away from (metadata only).
        target_word: the concept edited towards (metadata only).
        num_source_sentences: how many sentences were averaged for the source.
        num_target_sentences: how many sentences were averaged for the target.
        encoder_name: which text encoder produced it (e.g. its ``_name_or_path``).

    Shape:
        - delta: ``(1, L, D)`` (``L`` the tokenizer's ``model_max_length``, ``D`` the
          encoder's hidden size).
        - apply / forward: prompt embeddings ``(B, L, D)`` → ``(B, L, D)``.

    Attributes:
        delta: ``Float[Tensor, "1 l d"]``.

    Raises:
        ValueError: if ``delta`` is not ``(1, L, D)``, is not floating point, or holds
            non-finite values; if a word is an empty string; if a count is negative.

    Examples:
        >>> import torch
        >>> d = EditDirection(torch.ones(1, 4, 8), source_word="cat", target_word="dog")
        >>> d.apply_to(torch.zeros(2, 4, 8), scale=0.5).mean().item()
        0.5
        >>> d.reversed().source_word
        'dog'
    """

    delta: Tensor

    def __init__(
        self,
        delta: Float[Tensor, "1 l d"],
        *,
        source_word: str | None = None,
        target_word: str | None = None,
        num_source_sentences: int = 0,
        num_target_sentences: int = 0,
        encoder_name: str = "",
    ) -> None:
        super().__init__()
        if not isinstance(delta, Tensor):
            raise ValueError(f"delta must be a torch.Tensor, got {type(delta).__name__}")
        if delta.ndim != 3 or delta.shape[0] != 1:
            raise ValueError(f"delta must have shape (1, L, D), got {tuple(delta.shape)}")
        if not delta.is_floating_point():
            raise ValueError(f"delta must be floating point, got {delta.dtype}")
        if not bool(torch.isfinite(delta).all()):
            raise ValueError("delta holds NaN or infinite values")
        if num_source_sentences < 0 or num_target_sentences < 0:
            raise ValueError(
                "sentence counts must be non-negative, got "
                f"{num_source_sentences} and {num_target_sentences}"
            )
        self.register_buffer("delta", delta.detach().to(torch.float32).clone())
        self.source_word = _clean_word(source_word, "source_word")
        self.target_word = _clean_word(target_word, "target_word")
        self.num_source_sentences = int(num_source_sentences)
        self.num_target_sentences = int(num_target_sentences)
        self.encoder_name = str(encoder_name)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_sentences(
        cls,
        text_encoder: nn.Module,
        tokenizer: Any,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        *,
        batch_size: int = 32,
        source_word: str | None = None,
        target_word: str | None = None,
        show_progress: bool = False,
    ) -> EditDirection:
        """Build Δc from two sentence banks.

        The means are taken in float32 over the full ``(L, D)`` encodings of
        [`encode_prompts`][zerocon.direction.encode_prompts].

        Args:
            text_encoder: the pipeline's text encoder (the one the edit will condition).
            tokenizer: its tokenizer; ``model_max_length`` sets ``L``.
            source_sentences: sentences about the source concept (at least one).
            target_sentences: sentences about the target concept (at least one).
            batch_size: prompts per encoder call.
            source_word: stored as metadata.
            target_word: stored as metadata.
            show_progress: show tqdm bars while encoding.

        Returns:
            The direction, on the encoder's device.

        Raises:
            ValueError: for an empty bank, an empty word, or a tokenizer that does not fit the
                encoder.

        Examples:
            >>> from zerocon.testing import build_word_tokenizer, tiny_text_encoder
            >>> tok = build_word_tokenizer(["a", "cat", "dog"], model_max_length=16)
            >>> enc = tiny_text_encoder(len(tok), hidden_size=32, max_length=16)
            >>> d = EditDirection.from_sentences(enc, tok, ["a cat"], ["a dog"])
            >>> d.delta.shape
            torch.Size([1, 16, 32])
        """
        source = _check_sentences(source_sentences, "source_sentences")
        target = _check_sentences(target_sentences, "target_sentences")
        source_word = _clean_word(source_word, "source_word")
        target_word = _clean_word(target_word, "target_word")
        check_encoder_tokenizer(text_encoder, tokenizer)

        def mean_embedding(sentences: list[str]) -> Tensor:
            embeds = encode_prompts(
                text_encoder, tokenizer, sentences, batch_size=batch_size, show_progress=show_progress
            )
            return embeds.float().mean(dim=0, keepdim=True)

        delta = mean_embedding(target) - mean_embedding(source)
        if not bool(delta.abs().gt(0).any()):
            warnings.warn(
                "the edit direction is zero: the source and target sentences encode alike "
                f"(source {source[:2]!r}, target {target[:2]!r}); an edit along it changes nothing",
                UserWarning,
                stacklevel=2,
            )
        return cls(
            delta,
            source_word=source_word,
            target_word=target_word,
            num_source_sentences=len(source),
            num_target_sentences=len(target),
            encoder_name=_encoder_name(text_encoder),
        )

    @classmethod
    def from_words(
        cls,
        text_encoder: nn.Module,
        tokenizer: Any,
        source_word: str,
        target_word: str,
        sentence_source: SentenceSource | None = None,
        *,
        batch_size: int = 32,
        show_progress: bool = False,
    ) -> EditDirection:
        """Build Δc from two words, with sentences from ``sentence_source``.

        Args:
            text_encoder: the pipeline's text encoder.
            tokenizer: its tokenizer.
            source_word: the concept to edit away from, e.g. ``"cat"``.
            target_word: the concept to edit towards, e.g. ``"dog"``.
            sentence_source: where sentences come from; ``None`` uses
                [`TemplateSentences`][zerocon.direction.TemplateSentences] with the default templates.
            batch_size: prompts per encoder call.
            show_progress: show tqdm bars while encoding.

        Returns:
            The direction with both words recorded.

        Raises:
            ValueError: for an empty word, a source that yields no sentence, or a tokenizer that
                does not fit the encoder.

        Examples:
            >>> from zerocon.testing import build_word_tokenizer, tiny_text_encoder
            >>> tok = build_word_tokenizer(["cat", "dog"], model_max_length=16)
            >>> enc = tiny_text_encoder(len(tok), hidden_size=32, max_length=16)
            >>> EditDirection.from_words(enc, tok, "cat", "dog").num_source_sentences
            20
        """
        source_word_clean = _clean_word(source_word, "source_word")
        target_word_clean = _clean_word(target_word, "target_word")
        if source_word_clean is None or target_word_clean is None:
            raise ValueError("source_word and target_word must be non-empty strings")
        source = sentence_source if sentence_source is not None else TemplateSentences()
        return cls.from_sentences(
            text_encoder,
            tokenizer,
            source.sentences(source_word_clean),
            source.sentences(target_word_clean),
            batch_size=batch_size,
            source_word=source_word_clean,
            target_word=target_word_clean,
            show_progress=show_progress,
        )

    # ------------------------------------------------------------------ use
    @property
    def shape(self) -> torch.Size:
        """``(1, L, D)``."""
        return self.delta.shape

    def apply_to(self, prompt_embeds: Float[Tensor, "b l d"], scale: float = 1.0) -> Float[Tensor, "b l d"]:
        """Shift prompt embeddings along the direction: ``prompt_embeds + scale · Δc``.

        (Named ``apply_to`` so that ``nn.Module.apply(fn)`` keeps its meaning.)

        Args:
            prompt_embeds: embeddings ``(b, L, D)`` from the same text encoder and tokenizer.
            scale: the step along Δc (finite); ``0`` returns the embeddings unchanged,
                negative values edit the other way.

        Shape:
            Input and output: ``(b, L, D)``.

        Returns:
            A new tensor in the embeddings' dtype and on their device.

        Raises:
            ValueError: if the embeddings are not 3-D or not finite, their ``L``/``D`` differ
                from Δc's, or ``scale`` is not finite.

        Examples:
            >>> import torch
            >>> d = EditDirection(torch.ones(1, 3, 2))
            >>> d.apply_to(torch.zeros(1, 3, 2), 2.0)[0, 0].tolist()
            [2.0, 2.0]
        """
        if not math.isfinite(float(scale)):
            raise ValueError(f"scale must be finite, got {scale!r}")
        if isinstance(prompt_embeds, Tensor) and not bool(torch.isfinite(prompt_embeds).all()):
            raise ValueError("prompt_embeds holds NaN or infinite values")
        return self._shift(prompt_embeds, scale)

    def _shift(self, prompt_embeds: Tensor, scale: float) -> Tensor:
        if not isinstance(prompt_embeds, Tensor):
            raise ValueError(
                f"prompt_embeds must be a torch.Tensor, got {type(prompt_embeds).__name__}"
            )
        if prompt_embeds.ndim != 3:
            raise ValueError(
                f"prompt_embeds must have shape (b, L, D), got {tuple(prompt_embeds.shape)}"
            )
        _, length, dim = self.delta.shape
        if prompt_embeds.shape[1] != length or prompt_embeds.shape[2] != dim:
            raise ValueError(
                f"prompt_embeds have L={prompt_embeds.shape[1]}, D={prompt_embeds.shape[2]} but "
                f"the edit direction has L={length}, D={dim}; build the direction with the same "
                "text encoder and tokenizer (model_max_length) as the prompt embeddings"
            )
        delta = self.delta.to(device=prompt_embeds.device, dtype=prompt_embeds.dtype)
        return prompt_embeds + scale * delta

    def forward(
        self, prompt_embeds: Float[Tensor, "b l d"], scale: float = 1.0
    ) -> Float[Tensor, "b l d"]:
        """Same as [`apply_to`][zerocon.direction.EditDirection.apply_to]: ``prompt_embeds + scale · Δc``."""
        return self._shift(prompt_embeds, scale)

    def reversed(self) -> EditDirection:
        """The opposite edit: Δc negated, words and sentence counts swapped.

        Returns:
            A new ``EditDirection`` on the same device.

        Examples:
            >>> import torch
            >>> d = EditDirection(torch.ones(1, 2, 2), source_word="cat", target_word="dog")
            >>> r = d.reversed()
            >>> (r.source_word, r.target_word, r.delta.sum().item())
            ('dog', 'cat', -4.0)
        """
        return EditDirection(
            -self.delta,
            source_word=self.target_word,
            target_word=self.source_word,
            num_source_sentences=self.num_target_sentences,
            num_target_sentences=self.num_source_sentences,
            encoder_name=self.encoder_name,
        )

    # ------------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, str]:
        """The string metadata written by [`save`][zerocon.direction.EditDirection.save].

        Returns:
            ``format``, ``version``, ``source_word``, ``target_word`` (empty when unknown),
            ``num_source_sentences``, ``num_target_sentences``, ``encoder_name`` and ``shape``
            (a JSON list).
        """
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "source_word": self.source_word or "",
            "target_word": self.target_word or "",
            "num_source_sentences": str(self.num_source_sentences),
            "num_target_sentences": str(self.num_target_sentences),
            "encoder_name": self.encoder_name,
            "shape": json.dumps(list(self.delta.shape)),
        }

    def save(self, path: str | Path) -> None:
        """Write Δc (float32, key ``"delta"``) and its metadata to a safetensors file.

        Args:
            path: the file to write (parent folders are created).

        Examples:
            >>> import torch, tempfile, os
            >>> tmp = tempfile.TemporaryDirectory()
            >>> path = os.path.join(tmp.name, "cat2dog.safetensors")
            >>> EditDirection(torch.ones(1, 2, 2), source_word="cat").save(path)
            >>> EditDirection.load(path).source_word
            'cat'
            >>> tmp.cleanup()
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensor = self.delta.detach().to("cpu").contiguous()
        save_file({TENSOR_KEY: tensor}, str(path), metadata=self.metadata())

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> EditDirection:
        """Read a direction written by [`save`][zerocon.direction.EditDirection.save].

        Files holding only a ``"delta"`` tensor (no metadata) load too, with empty metadata.

        Args:
            path: the safetensors file.
            device: where to put Δc (CPU when ``None``).

        Returns:
            The direction.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file has no ``"delta"`` tensor, the tensor is not ``(1, L, D)``,
                it disagrees with the recorded ``shape``, or the metadata is malformed.

        Examples:
            >>> import torch, tempfile, os
            >>> tmp = tempfile.TemporaryDirectory()
            >>> path = os.path.join(tmp.name, "d.safetensors")
            >>> EditDirection(torch.zeros(1, 4, 8)).save(path)
            >>> EditDirection.load(path).shape
            torch.Size([1, 4, 8])
            >>> tmp.cleanup()
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"edit direction file {str(path)!r} does not exist")
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            keys = list(handle.keys())
            if TENSOR_KEY not in keys:
                raise ValueError(
                    f"{str(path)!r} holds no {TENSOR_KEY!r} tensor (found {keys}); it was not "
                    "written by EditDirection.save"
                )
            delta = handle.get_tensor(TENSOR_KEY)
            metadata: dict[str, str] = dict(handle.metadata() or {})
        file_format = metadata.get("format")
        if file_format is not None and file_format != FORMAT_NAME:
            raise ValueError(f"{str(path)!r} has format {file_format!r}, expected {FORMAT_NAME!r}")
        if "shape" in metadata:
            try:
                recorded = [int(v) for v in json.loads(metadata["shape"])]
            except (ValueError, TypeError) as error:
                raise ValueError(f"malformed 'shape' metadata in {str(path)!r}") from error
            if recorded != list(delta.shape):
                raise ValueError(
                    f"{str(path)!r}: tensor shape {list(delta.shape)} differs from the recorded "
                    f"shape {recorded}; the file is corrupt"
                )
        try:
            num_source = int(metadata.get("num_source_sentences", "0"))
            num_target = int(metadata.get("num_target_sentences", "0"))
        except ValueError as error:
            raise ValueError(f"malformed sentence counts in {str(path)!r}") from error
        direction = cls(
            delta,
            source_word=metadata.get("source_word") or None,
            target_word=metadata.get("target_word") or None,
            num_source_sentences=num_source,
            num_target_sentences=num_target,
            encoder_name=metadata.get("encoder_name", ""),
        )
        return direction.to(device) if device is not None else direction

    def __repr__(self) -> str:
        source = self.source_word if self.source_word is not None else "?"
        target = self.target_word if self.target_word is not None else "?"
        return (
            f"EditDirection({source!r} -> {target!r}, shape={tuple(self.delta.shape)}, "
            f"sentences={self.num_source_sentences}/{self.num_target_sentences}, "
            f"encoder={self.encoder_name!r}, norm={self.delta.norm().item():.4g}, "
            f"device={self.delta.device})"
        )
