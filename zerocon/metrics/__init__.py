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
"""

from zerocon.metrics.background import (
    BackgroundLPIPS,
    BackgroundMSE,
    BackgroundPSNR,
    BackgroundSSIM,
)
from zerocon.metrics.clip import ClipAccuracy, ClipScore
from zerocon.metrics.datasets import EvaluationCase, read_dataset
from zerocon.metrics.lpips_network import LpipsNetwork
from zerocon.metrics.masks import decode_rle_mask, encode_rle_mask, load_mask
from zerocon.metrics.structure import StructureDistance
from zerocon.metrics.summary import bootstrap_mean, summarize_rows

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
