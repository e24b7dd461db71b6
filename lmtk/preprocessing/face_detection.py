"""Faces in one image: dlib's frontal face detector plus its 68-point landmark model.

dlib is an optional dependency (``pip install dlib-bin face-recognition-models``, or
``pip install -e .[faces]``), imported on first use. The detector runs on a copy of the image shrunk to
at most ``max_side`` pixels, which makes it fast on phone footage; the landmarks are then fitted on the
full-resolution image, and their mean and extent give the face centre and size, which move much less
from frame to frame than the detector's box.

Example:
    >>> detector = FaceDetector()  # doctest: +SKIP
    >>> faces = detector(image)  # doctest: +SKIP
    >>> faces[0].center, faces[0].size  # doctest: +SKIP
    ((391.4, 282.0), 148.0)
    >>> box = face_box_for_image(image)  # doctest: +SKIP
    >>> crop = crop_to_box(image, box, 256)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..functional.checks import check_shape
from .crop import Box, framing_box

__all__ = [
    "INSTALL_HINT",
    "Face",
    "FaceDetector",
    "dlib_model_path",
    "face_box_for_image",
    "import_dlib",
]

INSTALL_HINT = "pip install dlib-bin face-recognition-models (or pip install -e .[faces])"
LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"


def import_dlib() -> Any:
    """The dlib module, or an ImportError that says how to install it."""
    try:
        import dlib
    except ImportError as error:
        raise ImportError(f"face detection needs dlib: {INSTALL_HINT}") from error
    return dlib


def dlib_model_path(name: str = LANDMARK_MODEL) -> Path:
    """The path of one of dlib's model files shipped by the ``face_recognition_models`` package.

    The package is located without being imported: its ``__init__`` needs ``pkg_resources``, which
    recent setuptools no longer ship.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"dlib's landmark model is missing: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"dlib model file not found: {path}; reinstall: {INSTALL_HINT}")
    return path


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixels of the image given to the detector.

    Attributes:
        center: ``(x, y)``, the mean of the landmarks (of the detector box without landmarks).
        size: the larger extent of the landmarks, about ear to ear (the detector box side without).
        score: the detector's confidence (higher is surer).
        detection: the detector's own box.
        landmarks: ``(68, 2)`` float32 ``(x, y)`` in dlib's order, or None.
    """

    center: tuple[float, float]
    size: float
    score: float
    detection: Box
    landmarks: np.ndarray | None = None

    @property
    def box(self) -> Box:
        """The square of side :attr:`size` around :attr:`center`."""
        return Box.from_center(*self.center, self.size)


class FaceDetector:
    """dlib's HOG frontal face detector with the 68-point landmark model.

    Args:
        max_side: the detector sees the image shrunk so its longer side is at most this (0: never
            shrunk). dlib finds faces down to about 80 pixels at ``upsample=0``, 40 at ``upsample=1``.
        upsample: times the detector doubles the image first, to find smaller faces (slower).
        landmarks: fit the 68 landmarks (steadier centre and size); False uses the detector box.
        min_score: faces scored below this are dropped (dlib's own threshold is 0).
    """

    def __init__(
        self, max_side: int = 640, upsample: int = 0, landmarks: bool = True, min_score: float = 0.0
    ) -> None:
        self.max_side = int(max_side)
        self.upsample = int(upsample)
        self.min_score = float(min_score)
        dlib = import_dlib()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(dlib_model_path())) if landmarks else None

    def __call__(self, image: np.ndarray) -> list[Face]:
        """The faces of an ``(H, W, 3)`` uint8 RGB image, largest first."""
        check_shape(image, ["H", "W", 3], "image", dtype=np.uint8)
        image = np.ascontiguousarray(image)
        scale = 1.0
        if self.max_side and max(image.shape[:2]) > self.max_side:
            scale = self.max_side / max(image.shape[:2])
            small_size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
        else:
            small = image
        rects, scores, _ = self._detector.run(small, self.upsample, self.min_score)
        faces = [self._face(image, rect, score, scale) for rect, score in zip(rects, scores)]
        return sorted(faces, key=lambda face: face.size, reverse=True)

    def _face(self, image: np.ndarray, rect: Any, score: float, scale: float) -> Face:
        detection = Box(rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1).scale(1 / scale)
        if self._predictor is None:
            return Face(detection.center, detection.side, float(score), detection)
        full = self._dlib.rectangle(
            round(detection.x0), round(detection.y0), round(detection.x1) - 1, round(detection.y1) - 1
        )
        shape = self._predictor(image, full)
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
        extent = points.max(0) - points.min(0)
        center = points.mean(0)
        return Face(
            (float(center[0]), float(center[1])), float(extent.max()), float(score), detection, points
        )


def face_box_for_image(
    image: np.ndarray,
    margin: float = 0.6,
    shift: float = 0.1,
    detector: FaceDetector | None = None,
) -> Box | None:
    """The crop box around the largest face of an image (e.g. an animation source), or None without a
    face (which :func:`~lmtk.preprocessing.crop.crop_to_box` and ``paste_back`` read as the whole image).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        margin, shift: framing, see :func:`~lmtk.preprocessing.crop.framing_box`.
        detector: a :class:`FaceDetector` to reuse; by default one that also finds faces of about 40
            pixels (``upsample=1``), since a single image is cheap to search.
    """
    detector = detector or FaceDetector(upsample=1)
    faces = detector(image)
    if not faces:
        return None
    return framing_box(faces[0].center, faces[0].size, margin, shift)
