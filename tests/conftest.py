"""Shared pytest setup."""

from __future__ import annotations

import os

import torch

# Tiny models are dominated by per-op overhead: one thread is fastest, and it keeps the suite
# predictable on 2-core CI machines. Override with ZEROCON_TEST_THREADS.
torch.set_num_threads(int(os.environ.get("ZEROCON_TEST_THREADS", "1")))
