"""The phases of one image's edit, each a small function of ``(editor, state, ...)``.

caption → condition (direction and embeddings) → encode → start (inversion or noising) →
denoise (reference and guided edit, step by step) → decode.
"""

from zerocon.editing.phases.caption import caption_phase
from zerocon.editing.phases.condition import condition_phase
from zerocon.editing.phases.decode import decode_phase
from zerocon.editing.phases.denoise import denoise_phase
from zerocon.editing.phases.encode import encode_phase
from zerocon.editing.phases.start import start_phase

__all__ = ["caption_phase", "condition_phase", "decode_phase", "denoise_phase", "encode_phase", "start_phase"]
