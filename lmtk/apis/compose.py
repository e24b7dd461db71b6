"""One animation as the tools show it: the source and driving video cropped to their faces, the source
edited, the start frame found, and each result composed (side by side, or pasted back into the source).

``tools/animate.py`` and the studio's Animate tab both call :func:`animate_composed`; they only differ in
how they report its notes and errors.

Example:
    >>> frames = animate_composed(  # doctest: +SKIP
    ...     animator, load_image("portrait.png"), "talk.mp4", crop_source=True, paste_back=True, note=print
    ... )
    >>> with VideoWriter("out.mp4", fps=video_frame_rate("talk.mp4")) as out:  # doctest: +SKIP
    ...     for frame in frames:
    ...         out.write(frame)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from ..preprocessing import Box, CroppedVideo, crop_to_box, face_box_for_image, face_box_for_video
from ..preprocessing import paste_back as paste
from .animator import MODES, Animator
from .media import center_square
from .smoothing import OneEuroFilter

__all__ = ["FaceCropUnavailable", "animate_composed", "even_sides", "fitted_box"]


class FaceCropUnavailable(ValueError):
    """The face detector cannot run (dlib or its model file is missing, or it failed)."""


def face_box(find: Callable[..., Box | None], what: str, margin: float, note: Callable[[str], None]):
    """The face box ``find(margin=margin)`` returns, or None with a note: the whole frame is used then.

    Raises:
        FaceCropUnavailable: the detector cannot run.
    """
    try:
        box = find(margin=margin)
    except (ImportError, OSError, RuntimeError) as error:
        raise FaceCropUnavailable(f"face crop is unavailable: {error}") from error
    if box is None:
        whole = "image" if what == "source" else "frame"
        note(f"no face found in the {what}: the whole {whole} is used")
    return box


def fitted_box(image: np.ndarray, resize: str) -> Box | None:
    """The part of an image that :func:`~lmtk.apis.media.fit_image` brings to the model size: all of it
    (None), or with ``resize="crop"`` its centred square."""
    if resize != "crop":
        return None
    top, left, side = center_square(*image.shape[:2])
    return Box(left, top, left + side, top + side)


def even_sides(image: np.ndarray) -> np.ndarray:
    """H.264 with 4:2:0 chroma needs even sides: drop a last odd row or column."""
    return image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]


def animate_composed(
    animator: Animator,
    image: np.ndarray,
    driving,
    *,
    mode: str = "relative",
    start_frame: int | str = 0,
    crop_source: bool = False,
    crop_driving: bool = False,
    crop_margin: float = 0.6,
    paste_back: bool = False,
    side_by_side: bool = False,
    smooth: bool | OneEuroFilter = False,
    edit: Mapping[str | int, float] | None = None,
    progress: bool = False,
    note: Callable[[str], None] = lambda text: None,
) -> Iterator[np.ndarray]:
    """Animate ``image`` (``(H, W, 3)`` uint8, any size) by ``driving`` and yield the frames to write.

    Args:
        animator: the :class:`Animator` to run.
        image: the source image.
        driving: anything :meth:`Animator.open_driving` reads.
        mode: ``"relative"`` or ``"absolute"`` (which uses no start frame).
        start_frame: relative mode's start frame, or ``"auto"``: the driving frame nearest the source in
            motion magnitudes (noted as ``start frame: N``).
        crop_source, crop_driving: crop the source, or the whole driving video, to one face box widened
            by ``crop_margin`` face sizes per side; without a face, the whole image or frame is used
            (noted).
        paste_back: each result pasted back where the source's face (or, without one, the part of the
            source the animator used, see :func:`fitted_box`) was, at the source's size with even sides.
        side_by_side: each frame as source | driving | result, at the model size.
        smooth: as for :meth:`Animator.animate`; a filter's parameters are used at the driving video's
            frame rate.
        edit: ``{direction: value}`` applied to the source first (see :meth:`Animator.encode_source`).
        progress: show progress bars on stderr.
        note: called with each line the user should know.

    The faces are found, the source encoded and an automatic start frame found when this is called;
    the frames are computed as they are consumed.

    Raises:
        FaceCropUnavailable: a crop is asked for and the face detector cannot run.
        ValueError: bad options or inputs (from :meth:`Animator.animate`).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if paste_back and side_by_side:
        raise ValueError("paste_back and side_by_side cannot be combined")
    source_box = None
    if crop_source:
        source_box = face_box(lambda **kw: face_box_for_image(image, **kw), "source", crop_margin, note)
    cropped = crop_to_box(image, source_box, animator.size) if source_box is not None else image
    source = animator.encode_source(cropped, edit=edit or None)
    paste_box = source_box if source_box is not None else fitted_box(image, animator.resize)
    reader = animator.open_driving(driving)
    if crop_driving:
        box = face_box(lambda **kw: face_box_for_video(reader, **kw), "driving video", crop_margin, note)
        if box is not None:
            reader = CroppedVideo(reader, box, animator.size)
    if mode == "absolute":
        start_frame = 0
    elif start_frame == "auto":
        start_frame = animator.find_start_frame(source, reader, progress=progress)
        note(f"start frame: {start_frame}")
    if isinstance(smooth, OneEuroFilter):
        smooth = dataclasses.replace(smooth, fps=reader.fps)
    frames = animator.animate(
        source,
        reader,
        mode=mode,
        start_frame=start_frame,
        with_driving=True,
        progress=progress,
        smooth=smooth,
    )
    return _compose(frames, image, source.image, side_by_side, paste_back, paste_box)


def _compose(frames, image, source_image, side_by_side, paste_back, paste_box) -> Iterator[np.ndarray]:
    for driving, result in frames:
        if side_by_side:
            result = np.concatenate([source_image, driving, result], axis=1)
        elif paste_back:
            result = even_sides(paste(image, result, paste_box))
        yield result
