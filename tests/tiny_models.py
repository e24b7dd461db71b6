"""The tiny LIA (32 px, untrained) that the Animator, ONNX and jitter tests share."""

import torch

from lmtk.registry import build

SIZE = 32
TINY_LIA = dict(
    type="lmtk.LIA.v2",
    encoder=dict(type="lmtk.LIAEncoder.v1", size=SIZE, latent_dim=32, channel_base=256, max_channels=32),
    synthesis=dict(type="lmtk.FlowGenerator.v1", size=SIZE, latent_dim=32, channel_base=256, max_channels=32),
    motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
)


def tiny_lia(seed: int = 0):
    """:data:`TINY_LIA` built with the weights of ``torch.manual_seed(seed)``, in eval mode."""
    torch.manual_seed(seed)
    return build(TINY_LIA).eval()
