"""Source-image captioners (method §1): anything with ``images -> list[str]``.

- [`Captioner`][zerocon.captioning.Captioner] — the protocol.
- [`BlipCaptioner`][zerocon.captioning.BlipCaptioner] — BLIP, greedy decoding, optional prefix such as ``"a photography of"``.
- [`ClipRetrievalCaptioner`][zerocon.captioning.ClipRetrievalCaptioner] — the candidate caption CLIP finds most similar.

Examples:
    >>> captioner = BlipCaptioner.from_pretrained(prefix="a photography of")  # doctest: +SKIP
    >>> isinstance(captioner, Captioner)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zerocon.captioning.captioner import Captioner

if TYPE_CHECKING:
    from zerocon.captioning.blip import DEFAULT_BLIP, BlipCaptioner
    from zerocon.captioning.clip_retrieval import ClipRetrievalCaptioner

#: The captioners (and transformers with them) are imported on first use, so code that needs
#: only the ``Captioner`` protocol (the editing engine) does not load BLIP's module.
_LAZY = {
    "DEFAULT_BLIP": "zerocon.captioning.blip",
    "BlipCaptioner": "zerocon.captioning.blip",
    "ClipRetrievalCaptioner": "zerocon.captioning.clip_retrieval",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_BLIP", "BlipCaptioner", "Captioner", "ClipRetrievalCaptioner"]
