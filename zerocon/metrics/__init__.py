"""Edit-quality metrics of zero-shot editing papers as ``torchmetrics.Metric`` s.

- :class:`StructureDistance` — distance between the self-similarity of DINO-ViT keys
  (Tumanyan et al.), used by pix2pix-zero and PIE-Bench.
- :class:`ClipAccuracy`, :class:`ClipScore` — does the edit follow the target text?
- :class:`BackgroundPSNR`, :class:`BackgroundMSE`, :class:`BackgroundSSIM` — fidelity outside
  the edit mask (PIE-Bench's background preservation).
- :func:`decode_rle_mask`, :func:`load_mask` — edit masks from PIE-Bench's run-length
  encoding or a PNG.

Every metric follows torchmetrics' conventions: ``update(edited, source, ...)`` with images as
float tensors ``(N, 3, H, W)`` in ``[0, 1]``, then ``compute()`` (the mean over images) and
``reset()``; distributed runs sum their states through torchmetrics. Models are passed in as
objects or local folders; nothing is downloaded.
"""

from zerocon.metrics.background import BackgroundMSE, BackgroundPSNR, BackgroundSSIM
from zerocon.metrics.clip import ClipAccuracy, ClipScore
from zerocon.metrics.masks import decode_rle_mask, load_mask
from zerocon.metrics.structure import StructureDistance

__all__ = [
    "BackgroundMSE",
    "BackgroundPSNR",
    "BackgroundSSIM",
    "ClipAccuracy",
    "ClipScore",
    "StructureDistance",
    "decode_rle_mask",
    "load_mask",
]
