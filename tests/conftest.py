"""Shared test fixtures.

`shared_dir` points at `../shared` beside the checkout (reference data and fixtures). On a user's
clone it is absent and tests that need it skip with a reason; in CI (CI=true) its absence fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = (REPO_ROOT / ".." / "shared").resolve()

# Two cores are shared by pytest-xdist workers: one intra-op thread per worker.
torch.set_num_threads(1)


def require_shared(*parts: str) -> Path:
    """Path under ../shared; skip (or fail when CI=true) if it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = (
            f"{path} not found: ../shared (reference data and fixtures) is not beside the checkout"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared_dir() -> Path:
    """The ../shared folder (skips on a user's clone, fails in CI if missing)."""
    return require_shared()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow", action="store_true", help="also run tests marked slow (CI=true runs them)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests (DDP, the demo, fault injection with many subprocesses, training to a floor)
    run in CI and with --runslow; a plain `pytest` stays quick."""
    if config.getoption("--runslow") or os.environ.get("CI", "").lower() == "true":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def trackeval_module():
    """The `trackeval` module (an optional dependency, installed with --no-deps: see the README);
    skips when it is missing, fails in CI (CI=true), whose script installs it."""
    from mistd.tracking.metrics import TRACKEVAL_INSTALL, trackeval_available

    if not trackeval_available():
        message = f"TrackEval is not installed ({TRACKEVAL_INSTALL})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from mistd.tracking.metrics import require_trackeval

    return require_trackeval()
