"""The scripts of tools/ as modules, so that tests call their ``main(argv)`` in-process: the same code
path as the command line, without paying the interpreter and torch start-up once per run."""

import importlib.util
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py``, freshly executed (a test's changes to it stay with that module)."""
    spec = importlib.util.spec_from_file_location(f"lmtk_tool_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
