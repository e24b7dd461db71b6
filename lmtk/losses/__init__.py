"""Loss sets (registered in :data:`lmtk.registry.loss_sets`) and the perceptual network they use.

Importing this package registers ``lmtk.LIALoss.v1``.
"""

from lmtk.losses.lia_loss import LIALoss, build_perceptual_loss
from lmtk.losses.perceptual import (
    VGG19_LAYERS,
    AutocastFeatures,
    ImagePyramid,
    PerceptualPyramidLoss,
    VGG19Features,
    default_vgg19_weights_path,
    vgg19_weights_url,
)

__all__ = [
    "LIALoss",
    "build_perceptual_loss",
    "VGG19_LAYERS",
    "AutocastFeatures",
    "ImagePyramid",
    "PerceptualPyramidLoss",
    "VGG19Features",
    "default_vgg19_weights_path",
    "vgg19_weights_url",
]
