"""Edit-quality metrics of zero-shot editing papers as ``torchmetrics.Metric`` s.

- ``StructureDistance`` — distance between the self-similarity of DINO-ViT keys
  (Tumanyan et al.), used by pix2pix-zero and PIE-Bench.
- ``ClipAccuracy``, ``ClipScore`` — does the edit follow the target text?
- ``BackgroundPSNR``, ``BackgroundMSE``, ``BackgroundSSIM``, ``BackgroundLPIPS`` — fidelity
  outside the edit mask (PIE-Bench's background preservation); ``LpipsNetwork`` — LPIPS from
  local weights.
- ``decode_rle_mask``, ``load_mask`` — edit masks from PIE-Bench's run-length
  encoding or a PNG.
- ``read_dataset``, ``EvaluationCase`` — PIE-Bench's ``mapping_file.json`` layout, or a
  folder with ``prompts.csv``; ``bootstrap_mean``, ``summarize_rows`` — means with 95%
  intervals (what ``zerocon evaluate`` writes).

Every metric follows torchmetrics' conventions: ``update(edited, source, ...)`` with images as
float tensors ``(N, 3, H, W)`` in ``[0, 1]``, then ``compute()`` (the mean over images) and
``reset()``; distributed runs sum their states through torchmetrics. Models are passed in as
objects or local folders; nothing is downloaded.

Needs the ``metrics`` extra (``pip install 'zerocon[metrics]'``: torchmetrics).
"""

from zerocon._extras import require_extra

require_extra("torchmetrics", "metrics", "zerocon.metrics")

from zerocon.metrics.background import (  # noqa: E402
    BackgroundLPIPS,
    BackgroundMSE,
    BackgroundPSNR,
    BackgroundSSIM,
)
from zerocon.metrics.clip import ClipAccuracy, ClipScore  # noqa: E402
from zerocon.metrics.datasets import EvaluationCase, read_dataset  # noqa: E402
from zerocon.metrics.lpips_network import LpipsNetwork  # noqa: E402
from zerocon.metrics.masks import decode_rle_mask, encode_rle_mask, load_mask  # noqa: E402
from zerocon.metrics.structure import StructureDistance  # noqa: E402
from zerocon.metrics.summary import bootstrap_mean, summarize_rows  # noqa: E402

__all__ = [
    "BackgroundLPIPS",
    "BackgroundMSE",
    "BackgroundPSNR",
    "BackgroundSSIM",
    "ClipAccuracy",
    "ClipScore",
    "EvaluationCase",
    "LpipsNetwork",
    "StructureDistance",
    "bootstrap_mean",
    "decode_rle_mask",
    "encode_rle_mask",
    "load_mask",
    "read_dataset",
    "summarize_rows",
]
