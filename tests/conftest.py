"""Shared test fixtures: real demo clips, tiny sizes, determinism."""

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): tiny
    networks gain nothing from a second thread, and the test cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The demo clips folder named by LMTK_TEST_DATA (``.ci/run`` points it at ``../shared/data``)."""
    root = os.environ.get("LMTK_TEST_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("LMTK_TEST_DATA is not set to the demo clips folder (for example ../shared/data)")
    return Path(root)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """The published-checkpoint fixture named by LMTK_CONFORMANCE (default ``../shared/conformance``)."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"
    root = Path(os.environ.get("LMTK_CONFORMANCE", default))
    if not (root / "official_keys.json").is_file():
        pytest.skip(f"conformance fixture not found at {root}; set LMTK_CONFORMANCE")
    return root
