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
