"""dlib's model files and a face finder that copes with tight face crops.

dlib ships no model files itself; the ``face-recognition-models`` package carries the ones lmtk uses
(``pip install dlib-bin face-recognition-models``). Its ``__init__`` imports ``pkg_resources``, which
recent setuptools removed, so the folder is located with :func:`importlib.util.find_spec` without
importing the package. ``$LMTK_DLIB_MODELS`` names another folder.

dlib's HOG face detector wants faces of at least ~80 px with some context around them; on the tight
256 px crops of VoxCeleb (and on small model-size frames) it misses some. :class:`FaceFinder` enlarges
small images first, then tries, in order: the image as is, the image upsampled ``upsample`` times, and,
if ``fallback`` is on, a box covering the image minus a margin (a face crop is mostly face). The method
is reported so callers can tell a detection from a guess.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .base import content_key

__all__ = [
    "DLIB_INSTALL_HINT",
    "FaceFinder",
    "dlib_model_dir",
    "dlib_model_path",
    "import_dlib",
    "load_dlib_model",
]

DLIB_INSTALL_HINT = "pip install dlib-bin face-recognition-models"


def import_dlib() -> Any:
    """The ``dlib`` module, or an ImportError that says how to install it."""
    try:
        import dlib
    except ImportError as error:
        raise ImportError(f"dlib is not installed; install it with `{DLIB_INSTALL_HINT}`") from error
    return dlib


def dlib_model_dir() -> Path:
    """The folder holding dlib's ``.dat`` model files (``$LMTK_DLIB_MODELS`` or face-recognition-models)."""
    override = os.environ.get("LMTK_DLIB_MODELS")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "dlib's model files were not found: install them with "
            f"`{DLIB_INSTALL_HINT}` or point $LMTK_DLIB_MODELS at a folder holding them"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def dlib_model_path(name: str, path: str | os.PathLike | None = None) -> Path:
    """The path of model file ``name`` (or the explicit ``path``); FileNotFoundError when missing."""
    resolved = Path(path) if path is not None else dlib_model_dir() / name
    if not resolved.is_file():
        raise FileNotFoundError(
            f"dlib model file not found: {resolved}; install it with `{DLIB_INSTALL_HINT}` "
            "or pass its path explicitly"
        )
    return resolved


@functools.lru_cache(maxsize=8)
def _load(kind: str, path: str) -> Any:
    # dlib models are read once per process; reading the 68-point predictor takes ~1 s
    dlib = import_dlib()
    return getattr(dlib, kind)(path)


def load_dlib_model(kind: str, path: Path) -> Any:
    """A cached ``dlib.<kind>(path)`` (``shape_predictor``, ``face_recognition_model_v1``)."""
    return _load(kind, str(path))


class FaceFinder:
    """The largest face of an image: :meth:`locate` gives the image the detector saw, its scale, the
    face box (a ``dlib.rectangle`` in that image) and how it was found.

    Args:
        upsample: upsampling steps of the retry when the plain detection fails (0: no retry). Images
            already enlarged to ``min_size`` are not retried: their faces are large enough.
        fallback: if nothing is detected, use a box covering the image minus ``margin`` on each side.
        margin: fallback margin, a fraction of the image side.
        min_size: images whose shorter side is smaller are enlarged to it first (the detector cannot
            see faces much below 80 px).
        cache_size: face boxes kept by image content; the landmark and the identity extractor of one
            evaluation find each face once if they share the settings (AKD, MKR and AED each look at
            twice a batch of frames, so keep this above six times the batch size).
    """

    def __init__(
        self,
        upsample: int = 1,
        fallback: bool = True,
        margin: float = 0.1,
        min_size: int = 256,
        cache_size: int = 1024,
    ) -> None:
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        if not 0 <= margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {margin}")
        self.dlib = import_dlib()
        self.detector = _detector()
        self.upsample, self.fallback, self.margin, self.min_size = int(upsample), fallback, margin, min_size
        self.cache_size = cache_size

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The image the detector sees and its scale relative to ``image``."""
        side = min(image.shape[:2])
        if side >= self.min_size:
            return image, 1.0
        scale = self.min_size / side
        height, width = round(image.shape[0] * scale), round(image.shape[1] * scale)
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC), scale

    def locate(self, image: np.ndarray) -> tuple[np.ndarray, float, Any, str] | None:
        """``(work_image, scale, box, method)`` or None; ``method`` is ``"detector"``, ``"upsampled"``
        or ``"fallback"``; the box is in ``work_image`` coordinates (``scale`` times ``image``'s)."""
        settings = (self.upsample, self.fallback, self.margin, self.min_size)
        key = (settings, content_key(image))
        work, scale = self.prepare(image)
        if key in _FOUND:
            _FOUND.move_to_end(key)
            found = _FOUND[key]
        else:
            # only the box is kept: the enlarged image is quick to make again and large to keep
            found = _FOUND[key] = self._find(work, retry=scale == 1.0)
            while len(_FOUND) > self.cache_size:
                _FOUND.popitem(last=False)
        return None if found is None else (work, scale, *found)

    def _find(self, image: np.ndarray, retry: bool):
        attempts = [(0, "detector")] + ([(self.upsample, "upsampled")] if self.upsample and retry else [])
        for upsample, method in attempts:
            faces = list(self.detector(image, upsample))
            if faces:
                return max(faces, key=lambda r: r.width() * r.height()), method
        if not self.fallback:
            return None
        height, width = image.shape[:2]
        dx, dy = round(self.margin * width), round(self.margin * height)
        return self.dlib.rectangle(dx, dy, width - 1 - dx, height - 1 - dy), "fallback"


# detections shared by every FaceFinder of the process, keyed by settings and image content
_FOUND: OrderedDict = OrderedDict()


@functools.lru_cache(maxsize=1)
def _detector() -> Any:
    return import_dlib().get_frontal_face_detector()
