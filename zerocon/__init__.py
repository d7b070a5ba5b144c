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
- [`metrics`][zerocon.metrics] — CLIP accuracy, structure distance, background PSNR/SSIM/LPIPS.
- ``zerocon.cli`` — the ``zerocon`` command (``edit``, ``demo``, ``direction``, ``evaluate``, ``serve``).
- [`testing`][zerocon.testing] — tiny random components for tests and quick experiments.

Importing ``zerocon`` itself imports none of them. ``zerocon.metrics`` needs the ``metrics``
extra and ``zerocon.web`` the ``demo`` extra (``pip install 'zerocon[all]'``); importing one
without its extra raises one ``ImportError`` that names it.
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
