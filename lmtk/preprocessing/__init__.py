"""From raw footage to model-ready face clips, and face crops for animation inputs.

- :mod:`.crop`: :class:`Box`, :func:`framing_box`, :func:`crop_to_box`, :func:`paste_back`,
  :class:`CroppedVideo`.
- :mod:`.face_detection`: :class:`FaceDetector` (dlib, optional: ``pip install -e .[faces]``) and
  :func:`face_box_for_image`.
- :mod:`.face_tracks`: following one face through a video, shot cuts, :func:`face_box_for_video`.
- :mod:`.prepare`: :func:`prepare_dataset`, behind ``tools/prepare_dataset.py``.

dlib is imported only when a detector is made, so cropping and tracking work without it.
"""

from .crop import PAD_MODES, Box, CroppedVideo, crop_to_box, feather_mask, framing_box, paste_back
from .face_detection import INSTALL_HINT, Face, FaceDetector, dlib_model_path, face_box_for_image
from .face_tracks import (
    FaceTrack,
    face_box_for_video,
    interpolate_segment,
    key_frames,
    link_detections,
    scan_video,
    smooth_track,
    split_by_drift,
    track_faces,
)
from .prepare import PrepareOptions, collect_videos, prepare_dataset, process_video, source_names, split_for

__all__ = [
    "INSTALL_HINT",
    "PAD_MODES",
    "Box",
    "CroppedVideo",
    "Face",
    "FaceDetector",
    "FaceTrack",
    "PrepareOptions",
    "collect_videos",
    "crop_to_box",
    "dlib_model_path",
    "face_box_for_image",
    "face_box_for_video",
    "feather_mask",
    "framing_box",
    "interpolate_segment",
    "key_frames",
    "link_detections",
    "paste_back",
    "prepare_dataset",
    "process_video",
    "scan_video",
    "smooth_track",
    "source_names",
    "split_by_drift",
    "split_for",
    "track_faces",
]
