"""The example plugin ``plugins/lmtk_householder``: its basis, and discovery through entry points only.

catalogue reads the installed entry points once, when it is imported, so each discovery check runs in a
fresh interpreter whose ``PYTHONPATH`` holds a generated ``*.dist-info`` folder next to the package:
what ``pip install`` would leave in site-packages, without touching site-packages.
"""

import ast
import configparser
import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "plugins" / "lmtk_householder"
NAME = "lmtk_householder.HouseholderBasis.v1"


@pytest.fixture
def householder(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    from lmtk_householder import householder

    return householder


def _plugin_metadata() -> tuple[str, str, dict[str, str]]:
    """Name, version and ``{group: entry-point lines}`` read from the plugin's setup.cfg."""
    config = configparser.ConfigParser()
    config.read(PLUGIN / "setup.cfg")
    groups = {group: value.strip() for group, value in config["options.entry_points"].items()}
    return config["metadata"]["name"], config["metadata"]["version"], groups


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """A folder that looks like site-packages with the plugin installed."""
    root = tmp_path_factory.mktemp("site")
    name, version, groups = _plugin_metadata()
    (root / name).symlink_to(PLUGIN / name, target_is_directory=True)
    dist_info = root / f"{name}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    entry_points = "".join(f"[{group}]\n{lines}\n\n" for group, lines in groups.items())
    (dist_info / "entry_points.txt").write_text(entry_points)
    return root


def _python(code: str, *paths: Path, module: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (*paths, REPO))}
    args = ["-m", *code.split()] if module else ["-c", textwrap.dedent(code)]
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def _installed_elsewhere() -> bool:
    return any(ep.name == NAME for ep in importlib.metadata.entry_points(group="lmtk_motion_bases"))


# ----------------------------------------------------------------------------- the basis itself


def test_setup_cfg_declares_the_entry_point():
    name, version, groups = _plugin_metadata()
    assert (name, version) == ("lmtk_householder", "0.1.0")
    assert groups == {"lmtk_motion_bases": f"{NAME} = lmtk_householder.householder:HouseholderBasis"}


def test_plugin_does_not_import_lmtk():
    # registration is the entry point's job: the package must not touch lmtk's registry
    for source in (PLUGIN / "lmtk_householder").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] if node.level == 0 else []
            else:
                continue
            assert not any(m == "lmtk" or m.startswith("lmtk.") for m in modules), source


@pytest.mark.parametrize(("latent_dim", "num_directions"), [(16, 4), (8, 8), (5, 1)])
def test_directions_are_orthonormal(householder, latent_dim, num_directions):
    torch.manual_seed(0)
    basis = householder.HouseholderBasis(latent_dim, num_directions)
    directions = basis.directions()
    assert directions.shape == (latent_dim, num_directions)
    assert torch.allclose(directions.t() @ directions, torch.eye(num_directions), atol=1e-5)
    magnitudes = torch.randn(3, num_directions)
    assert torch.allclose(basis(magnitudes), magnitudes @ directions.t(), atol=1e-6)


def test_directions_match_explicit_reflection_product(householder):
    torch.manual_seed(0)
    vectors = torch.randn(3, 6, dtype=torch.float64)
    product = torch.eye(6, dtype=torch.float64)
    for v in vectors:
        product = product @ (torch.eye(6, dtype=torch.float64) - 2 * torch.outer(v, v) / v.dot(v))
    assert torch.allclose(householder.householder_directions(vectors), product[:, :3], atol=1e-12)


def test_training_keeps_orthonormality(householder):
    torch.manual_seed(0)
    basis = householder.HouseholderBasis(12, 3)
    optimizer = torch.optim.SGD(basis.parameters(), lr=0.5)
    basis(torch.randn(4, 3)).pow(2).sum().backward()
    assert torch.isfinite(basis.vectors.grad).all() and basis.vectors.grad.abs().sum() > 0
    optimizer.step()
    directions = basis.directions()
    assert torch.allclose(directions.t() @ directions, torch.eye(3), atol=1e-5)


def test_float64_and_gradcheck(householder):
    torch.manual_seed(0)
    basis = householder.HouseholderBasis(6, 2).double()
    assert basis.directions().dtype == torch.float64
    vectors = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(householder.householder_directions, (vectors,))


def test_rejects_invalid_arguments(householder):
    for bad in (0, 9):
        with pytest.raises(ValueError, match="num_directions"):
            householder.HouseholderBasis(8, bad)
    with pytest.raises(ValueError, match="magnitudes"):
        householder.HouseholderBasis(8, 2)(torch.randn(1, 3))


# ----------------------------------------------------------------------------- discovery


BUILD_AND_TRANSFER = f"""
import sys
import torch
from lmtk.registry import build, list_components

assert "lmtk_householder" not in sys.modules
assert "{NAME}" in list_components("motion_bases")["motion_bases"]
network = dict(size=32, latent_dim=32, channel_base=256, max_channels=32)
torch.manual_seed(0)
model = build(dict(
    type="lmtk.LIA.v1",
    encoder=dict(type="lmtk.LIAEncoder.v1", **network),
    generator=dict(type="lmtk.FlowGenerator.v1", **network),
    motion_basis=dict(type="{NAME}", latent_dim=32, num_directions=4),
    motion_mlp_layers=2,
))
assert type(model.net.motion_basis).__module__ == "lmtk_householder.householder"
with torch.no_grad():
    out = model.transfer(torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1)
assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()
directions = model.directions()
assert directions.shape == (32, 4)
assert torch.allclose(directions.t() @ directions, torch.eye(4), atol=1e-5)
print("ok")
"""

UNKNOWN_WITHOUT_PLUGIN = f"""
from lmtk.registry import RegistryError, build

try:
    build(dict(type="{NAME}", latent_dim=8, num_directions=2))
except RegistryError as error:
    print(error)
else:
    raise SystemExit("the plugin was found without its entry point")
"""


def test_plugin_builds_inside_lia_through_entry_points(plugin_path):
    result = _python(BUILD_AND_TRANSFER, plugin_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_cli_lists_the_plugin(plugin_path):
    result = _python("lmtk list motion_bases", plugin_path, module=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "motion_bases:"
    assert f"  {NAME}" in lines and "  lmtk.GramSchmidtBasis.v1" in lines


def test_name_is_unknown_without_the_plugin():
    if _installed_elsewhere():
        pytest.skip("lmtk_householder is installed in this environment")
    result = _python(UNKNOWN_WITHOUT_PLUGIN)
    assert result.returncode == 0, result.stderr
    assert f"'{NAME}'" in result.stdout
    assert "lmtk.GramSchmidtBasis.v1" in result.stdout and "lmtk.DirectPath.v1" in result.stdout


@pytest.mark.parametrize("doc", [REPO / "docs" / "plugins.md", PLUGIN / "README.md"])
def test_documented_config_inherits_from_outside_the_repository(doc, tmp_path):
    from lmtk.config_file import read_config

    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    (example,) = [block for block in blocks if "_base_" in block]
    config = tmp_path / "my_config.py"
    config.write_text(example.replace("/path/to/lmtk", str(REPO)))
    model = read_config(config).model
    assert model.motion_basis.type == NAME and model.type == "lmtk.LIA.v2"
    # the shared latent_dim comes from the model, so shrinking the model keeps the parts consistent
    assert "latent_dim" not in model.motion_basis
