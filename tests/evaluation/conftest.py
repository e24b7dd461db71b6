"""Fixtures of the evaluation tests: a tiny LIA model, a tiny synthetic test split, fake extractors."""

import numpy as np
import pytest
import torch

from lmtk.evaluation.extractors.base import IdentityEmbedding, IdentityExtractor, KeypointExtractor, Keypoints
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


class ShiftExtractor(KeypointExtractor):
    """Three keypoints at fixed places, moved by the (red, green) values of pixel (0, 0); None when its
    blue value is 255. Lets a test say exactly where the "detector" puts keypoints in each frame."""

    num_keypoints = 3
    base = np.array([[10.0, 10.0], [20.0, 12.0], [15.0, 25.0]])

    def detect(self, image):
        red, green, blue = image[0, 0].astype(float)
        if blue == 255:
            return None
        return Keypoints(self.base + [red, green])


def marked_frames(count, shifts=None, lost=()):
    """``(count, 32, 32, 3)`` uint8 frames whose pixel (0, 0) carries a shift and a lost flag."""
    frames = np.zeros((count, 32, 32, 3), np.uint8)
    for i in range(count):
        if shifts is not None:
            frames[i, 0, 0, :2] = shifts[i]
        if i in lost:
            frames[i, 0, 0, 2] = 255
    return frames


class MeanColourIdentity(IdentityExtractor):
    """The mean colour as a 3-d "identity"; no face when the image is all black."""

    def embed(self, image):
        if not image.any():
            return None
        return IdentityEmbedding(image.reshape(-1, 3).mean(axis=0))
