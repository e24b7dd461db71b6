"""Fake extractors and marked frames for metric tests."""

import numpy as np

from lmtk.evaluation.extractors.base import IdentityEmbedding, IdentityExtractor, KeypointExtractor, Keypoints


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
