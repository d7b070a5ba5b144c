"""zerocon: zero-shot, text-guided image-to-image translation with latent diffusion.

Each subpackage is usable on its own:

- :mod:`zerocon.attention` — ``AttentionStore``, a recording hook for diffusers UNets.
- :mod:`zerocon.losses` — PatchNCE, cross-attention and noise-regularisation losses.
- :mod:`zerocon.direction` — ``EditDirection``, text-embedding edit directions.
- :mod:`zerocon.captioning` — captioners (BLIP, CLIP retrieval).
- :mod:`zerocon.guidance` — ``GuidedScheduler`` and guidance terms.
- :mod:`zerocon.inversion` — ``DDIMInverter`` with noise regularisation.
- :mod:`zerocon.shapes` — the synthetic shapes world and the embedded model.
- :mod:`zerocon.pipelines` — ``ZeroConPipeline``, the editor that wires the parts together.
- :mod:`zerocon.cli` — the ``zerocon`` command (``edit``, ``demo``, ``direction``).
- :mod:`zerocon.testing` — tiny random components for tests and quick experiments.

Importing ``zerocon`` itself imports none of them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
