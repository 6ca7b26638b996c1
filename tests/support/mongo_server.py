"""The tests' way to the project's MongoDB-wire server process (``deploy.local.mongo_server``,
which the benchmarks use too): its jars, or the test is skipped (failed under CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy.local.mongo_server import NOT_BUILT, built_libs


def server_libs() -> Path:
    """The launcher's jars, or the test is skipped (failed under CI) with what to run."""
    libs = built_libs()
    if libs is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(NOT_BUILT, pytrace=False)
        pytest.skip(NOT_BUILT)
    return libs
