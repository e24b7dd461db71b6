"""Fixtures of the evaluation tests: a tiny LIA model, a tiny synthetic test split, fake extractors."""

import pytest
import torch

from lmtk.registry import build

TINY = dict(
    type="lmtk.LIA.v1",
    size=64,
    latent_dim=32,
    channel_base=256,
    max_channels=32,
    encoder=dict(type="lmtk.LIAEncoder.v1"),
    generator=dict(type="lmtk.FlowGenerator.v1"),
    motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", num_directions=5),
)


@pytest.fixture(scope="session")
def tiny_model():
    torch.manual_seed(0)
    return build(TINY).eval()


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    from lmtk.datasets.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, num_train=0, num_test=2, num_frames=8, size=64, seed=0, progress=False)
    return root
