"""The phases of one image's edit, each a small function.

caption → condition (direction and embeddings) → encode → start (the method's ``start`` hook:
inversion or noising) → denoise (the method's ``step`` hook per step, run by
[`EditLoop`][zerocon.editing.EditLoop]) → decode.
"""

from zerocon.editing.phases.caption import caption_phase
from zerocon.editing.phases.condition import condition_phase
from zerocon.editing.phases.decode import decode_phase
from zerocon.editing.phases.encode import encode_phase
from zerocon.editing.phases.start import invert_start, noise_start

__all__ = ["caption_phase", "condition_phase", "decode_phase", "encode_phase", "invert_start", "noise_start"]
