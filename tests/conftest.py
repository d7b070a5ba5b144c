"""Shared pytest setup."""

from __future__ import annotations

import os

# Every jaxtyping annotation in zerocon is checked at run time while the suite runs: the hook
# must be installed before the first zerocon import (this file is imported before the tests).
from jaxtyping import install_import_hook

# PEP 484's numeric tower: an int is a valid float, as for mypy.
install_import_hook("zerocon", "beartype.beartype(conf=beartype.BeartypeConf(is_pep484_tower=True))")

import jaxtyping  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny models are dominated by per-op overhead: one thread is fastest, and it keeps the suite
# predictable on 2-core CI machines. Override with ZEROCON_TEST_THREADS.
torch.set_num_threads(int(os.environ.get("ZEROCON_TEST_THREADS", "1")))


@pytest.fixture
def unchecked():
    """Turn the runtime type and shape checks off inside one test.

    For tests of zerocon's own input validation: users run without the checker, so these
    tests must reach the library's own messages, which the checker would pre-empt.
    """
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)


@pytest.fixture(scope="module")
def pipe():
    """A ZeroConPipeline on tiny random models with two sentence templates (one per test module).

    Modules that need another pipeline (a captioner, the embedded model) define their own
    ``pipe`` fixture, which takes precedence.
    """
    from zerocon.direction import TemplateSentences
    from zerocon.pipelines import ZeroConPipeline
    from zerocon.testing import tiny_components

    c = tiny_components()
    return ZeroConPipeline(
        c.vae, c.text_encoder, c.tokenizer, c.unet, c.scheduler,
        sentence_source=TemplateSentences(["a photo of a {}", "a {} on a background"]),
    )
