"""zerocon: zero-shot, text-guided image-to-image translation with latent diffusion.

Each subpackage is usable on its own:

- [`attention`][zerocon.attention] — ``AttentionStore``, a recording hook for diffusers UNets.
- [`losses`][zerocon.losses] — PatchNCE, cross-attention and noise-regularisation losses.
- [`direction`][zerocon.direction] — ``EditDirection``, text-embedding edit directions.
- [`captioning`][zerocon.captioning] — captioners (BLIP, CLIP retrieval).
- [`guidance`][zerocon.guidance] — ``GuidedScheduler`` and guidance terms.
- [`inversion`][zerocon.inversion] — ``DDIMInverter`` with noise regularisation.
- [`shapes`][zerocon.shapes] — the synthetic shapes world and the embedded model.
- [`pipelines`][zerocon.pipelines] — ``ZeroConPipeline``, the editor that wires the parts together.
- ``zerocon.cli`` — the ``zerocon`` command (``edit``, ``demo``, ``direction``).
- [`testing`][zerocon.testing] — tiny random components for tests and quick experiments.

Importing ``zerocon`` itself imports none of them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
