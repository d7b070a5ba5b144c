"""The bounds every front end (command line, web page) applies to its inputs."""

from __future__ import annotations

#: Default largest input, in pixels (2048 × 2048); ``--max-pixels`` raises it. Larger images are
#: refused from their header, before any pixel is decoded.
DEFAULT_MAX_PIXELS = 2048 * 2048
#: The largest ``--max-pixels``: 64 megapixels, 8192² (an image of that size already needs
#: gigabytes at every step; past it decoding alone can exhaust a machine's memory).
MAX_PIXELS_LIMIT = 8192 * 8192

#: The largest seed a torch.Generator takes.
MAX_SEED = 2**64 - 1
