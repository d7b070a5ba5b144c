"""Edit directions in text-embedding space (method §3).

Δc = mean E(target sentences) − mean E(source sentences), over the full ``(L, D)`` hidden-state
sequence of the pipeline's own text encoder; the edit conditions on ``c + Δc``.

- [`encode_prompts`][zerocon.direction.encode_prompts] — batched, padded encoding of prompts.
- [`EditDirection`][zerocon.direction.EditDirection] — Δc as an ``nn.Module`` buffer, with ``apply_to``, ``save``/``load``.
- [`SentenceSource`][zerocon.direction.SentenceSource] and its implementations [`TemplateSentences`][zerocon.direction.TemplateSentences],
  [`FileSentences`][zerocon.direction.FileSentences], [`LanguageModelSentences`][zerocon.direction.LanguageModelSentences].
- [`DualTextEncoder`][zerocon.direction.DualTextEncoder], [`PackedConditioning`][zerocon.direction.PackedConditioning] — SDXL's two
  encoders as one, its pooled embedding packed as an extra row that the UNet unpacks.
- [`SD3TextEncoder`][zerocon.direction.SD3TextEncoder], [`FluxTextEncoder`][zerocon.direction.FluxTextEncoder]
  — SD3's CLIP-L, CLIP-G and T5, FLUX's CLIP and T5, each as one encoder, the pooled vector packed
  the same way.
- [`contains_word`][zerocon.direction.contains_word], [`split_sentences`][zerocon.direction.split_sentences] — the text helpers the sources use.

Examples:
    >>> from zerocon.testing import build_word_tokenizer, tiny_text_encoder
    >>> tok = build_word_tokenizer(["cat", "dog"], model_max_length=16)
    >>> enc = tiny_text_encoder(len(tok), hidden_size=32, max_length=16)
    >>> direction = EditDirection.from_words(enc, tok, "cat", "dog")
    >>> c = encode_prompts(enc, tok, ["a photo of a cat"])
    >>> direction.apply_to(c).shape
    torch.Size([1, 16, 32])
"""

from zerocon.direction.dual_text_encoder import DualTextEncoder
from zerocon.direction.edit_direction import EditDirection
from zerocon.direction.encoding import check_encoder_tokenizer, encode_prompts
from zerocon.direction.file_sentences import FileSentences
from zerocon.direction.flux_text_encoder import FluxTextEncoder
from zerocon.direction.language_model_sentences import DEFAULT_PROMPT, LanguageModelSentences
from zerocon.direction.packed_conditioning import PackedConditioning, needs_added_conditioning
from zerocon.direction.sd3_text_encoder import SD3TextEncoder
from zerocon.direction.sentence_source import SentenceSource
from zerocon.direction.sentence_text import contains_word, dedupe, split_sentences
from zerocon.direction.template_sentences import DEFAULT_TEMPLATES, TemplateSentences

__all__ = [
    "DEFAULT_PROMPT",
    "DEFAULT_TEMPLATES",
    "DualTextEncoder",
    "EditDirection",
    "FileSentences",
    "FluxTextEncoder",
    "LanguageModelSentences",
    "PackedConditioning",
    "SD3TextEncoder",
    "SentenceSource",
    "TemplateSentences",
    "check_encoder_tokenizer",
    "contains_word",
    "dedupe",
    "encode_prompts",
    "needs_added_conditioning",
    "split_sentences",
]
