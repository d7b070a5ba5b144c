"""Source-image captioners (method §1): anything with ``images -> list[str]``.

- [`Captioner`][zerocon.captioning.Captioner] — the protocol.
- [`BlipCaptioner`][zerocon.captioning.BlipCaptioner] — BLIP, greedy decoding, optional prefix such as ``"a photography of"``.
- [`ClipRetrievalCaptioner`][zerocon.captioning.ClipRetrievalCaptioner] — the candidate caption CLIP finds most similar.

Examples:
    >>> captioner = BlipCaptioner.from_pretrained(prefix="a photography of")  # doctest: +SKIP
    >>> isinstance(captioner, Captioner)  # doctest: +SKIP
    True
"""

from zerocon.captioning.blip import DEFAULT_BLIP, BlipCaptioner
from zerocon.captioning.captioner import Captioner
from zerocon.captioning.clip_retrieval import ClipRetrievalCaptioner

__all__ = ["DEFAULT_BLIP", "BlipCaptioner", "Captioner", "ClipRetrievalCaptioner"]
