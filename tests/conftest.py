"""Shared test fixtures: real demo clips, tiny sizes, determinism."""

import os
from pathlib import Path

import pytest
import torch

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# with pytest-xdist (README: -n 2) each worker gets its share of the cores, and so do the tools its tests
# start: an OpenMP thread that waits for a core the other worker holds made a training step 2.3x slower
THREADS = max(1, min(2, CORES // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
torch.set_num_threads(THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)  # set, not defaulted: workers inherit the main process's


@pytest.fixture(autouse=True)
def outside_the_checkout(tmp_path_factory, monkeypatch):
    """Every test runs in a temporary current directory: the default folders a tool writes to
    (``work_dirs/``, ``data/``) are then the test's own, never the user's runs beside the checkout, and a
    test that names a repository file by a relative path fails here instead of passing by chance."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def pytest_collection_modifyitems(items):
    """The slow tests first, the longest first (``pytest.mark.slow(minutes=N)``): with one worker per
    core the longest starts at once, while the other workers share the rest of the suite. A test whose
    module fixtures are costly to build (the 512 px LIA-X weights) should be one test: workers steal
    queued tests, so a module's tests may run on two workers or apart, and build them twice."""

    def minutes(item) -> float:
        marker = item.get_closest_marker("slow")
        return 0.0 if marker is None else float(marker.kwargs.get("minutes", 1))

    items.sort(key=minutes, reverse=True)
    # pytest-xdist's worksteal never takes the item queued right behind a running one, so the item after
    # the longest runs only when the longest has ended, on the same worker: a quick one, not the next slow
    quick = next((i for i, item in enumerate(items) if minutes(item) == 0.0), None)
    if quick is not None and quick > 1:
        items.insert(1, items.pop(quick))


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): tiny
    networks gain nothing from a second thread, and the test cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    """The tiny LIA of tests/tiny_models.py, for a module that builds no model of its own (a module's own
    ``model`` fixture takes precedence). Here and not in tests/apis/conftest.py: pytest's doctest
    collection imports this file as ``conftest`` after that one, and the two names clash."""
    from tiny_models import tiny_lia

    return tiny_lia()


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
