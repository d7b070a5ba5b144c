"""``ZeroConTransformerPipeline``: what the MMDiT families (SD3, FLUX) change in ``ZeroConPipeline``'s loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zerocon.pipelines.supported_models import check_transformer_folder
from zerocon.pipelines.zerocon_pipeline import ZeroConPipeline


class ZeroConTransformerPipeline(ZeroConPipeline):
    """The base of the transformer families' pipelines: the transformer predicts, the scheduler is kept.

    A subclass registers its family's components, builds its prompt encoder
    (``prompt_encoder``) and its model seam (``make_denoiser``); loading, the call and saving are
    [`ZeroConPipeline`][zerocon.pipelines.ZeroConPipeline]'s.

    Shape:
        As ``ZeroConPipeline``.

    Examples:
        >>> from zerocon.pipelines import ZeroConSD3Pipeline
        >>> issubclass(ZeroConSD3Pipeline, ZeroConTransformerPipeline)
        True
    """

    @classmethod
    def _check_folder(cls, folder: Path) -> None:
        check_transformer_folder(folder)

    @classmethod
    def _check_pipeline(cls, pipeline: Any) -> None:
        """Nothing to refuse: ``ZeroConPipeline.from_pipe`` picked this class by the pipeline's transformer."""

    def _prepare_scheduler(self) -> None:
        """The family's flow-matching scheduler is the edit's: kept as loaded."""

    @property
    def denoiser_model(self) -> Any:
        return self.transformer
