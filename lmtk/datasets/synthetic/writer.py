"""Write a synthetic talking-face dataset to disk, in the layouts the video datasets read.

Layout ``"video"`` (H.264 in MP4, yuv420p)::

    root/manifest.json                 written last: its presence means the dataset is complete
    root/train/id0000#00.mp4           one clip; clips of one identity share the ``id<NNNN>`` prefix
    root/train/id0000#00.json          its ground truth (schema below)
    root/test/...

Layout ``"frames"`` replaces each ``.mp4`` with a folder of lossless PNGs ``id0000#00/00000.png ...``.
Train and test identities never overlap.

Per-clip JSON::

    {"name": "id0000#00", "split": "train", "identity_index": 0, "clip": 0,
     "seed": int, "fps": 25, "size": 64, "num_frames": T, "generator_version": 1,
     "keypoint_names": [K names], "keypoints": T x K x [x, y] (output pixels, pixel centres on integers),
     "params": {factor: [T values]}, "identity": {FaceIdentity fields}}

``render_video(seed, num_frames, size, fps, clip)`` re-renders a clip from its JSON exactly.

Every file is written under a temporary name and renamed into place, and the manifest is removed first
and written last, so an interrupted run never looks complete to :func:`synthetic_dataset_ready`.

Example:
    >>> manifest = make_synthetic_dataset("data/synthetic", num_train=64, num_test=8)  # doctest: +SKIP
    >>> synthetic_dataset_ready("data/synthetic", size=64)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from tqdm import tqdm

from lmtk.version import __version__

from ...functional.checks import check_shape
from .render import (
    GENERATOR_VERSION,
    KEYPOINT_NAMES,
    MOTION_FACTORS,
    FaceIdentity,
    _check_size,
    render_video,
    video_seed,
)

__all__ = [
    "GENERATOR_NAME",
    "LAYOUTS",
    "MANIFEST_NAME",
    "clip_name",
    "make_synthetic_dataset",
    "read_manifest",
    "synthetic_dataset_ready",
    "write_frames",
    "write_video",
]

GENERATOR_NAME = "lmtk.synthetic_faces"
MANIFEST_NAME = "manifest.json"
LAYOUTS = ("video", "frames")
SPLITS = ("train", "test")
_CLIP_PATTERN = re.compile(r"id\d{4,}#\d{2,}(\.mp4|\.json)?")


def clip_name(identity_index: int, clip: int) -> str:
    """``id<NNNN>#<CC>``: the part before ``#`` names the identity, so clips can be grouped by person."""
    return f"id{identity_index:04d}#{clip:02d}"


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _remove_stale(folder: Path, keep: set[Path]) -> None:
    """Delete clips of an earlier run (another count or layout) that this run did not write."""
    for path in folder.iterdir():
        if _CLIP_PATTERN.fullmatch(path.name) and path not in keep:
            _remove(path)


def _write_json(path: Path, data: Any) -> None:
    temporary = _temporary(path)
    temporary.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(temporary, path)


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 25,
    crf: int = 12,
    keyframe_interval: int | None = None,
) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 yuv420p MP4, atomically (temporary file, rename).

    yuv420p halves the chroma resolution, so H and W must be even. A low ``crf`` keeps decoded frames
    close to the rendered ones (12: typically within a few grey levels away from sharp colour edges).
    ``keyframe_interval`` caps the frames between keyframes (None: the encoder's default, up to 250):
    reading one frame decodes from the keyframe before it, so a short interval makes the random frame
    pairs of training cheap to read, at some cost in file size.
    """
    path = Path(path)
    frames = np.asarray(frames)
    check_shape(frames, ["T", "H", "W", 3], "frames", dtype=np.uint8)
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(
            f"H.264 in yuv420p needs an even frame size, got {width}x{height}; use layout='frames'"
        )
    temporary = _temporary(path)
    try:
        with av.open(str(temporary), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            options = {"crf": str(crf), "preset": "medium"}
            if keyframe_interval is not None:
                options["g"] = str(keyframe_interval)
            stream.options = options
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_frames(path: str | os.PathLike, frames: np.ndarray) -> None:
    """Save (T, H, W, 3) uint8 RGB frames as ``path/00000.png ...``, atomically (temporary folder, rename)."""
    path = Path(path)
    temporary = _temporary(path)
    _remove(temporary)
    temporary.mkdir(parents=True)
    try:
        for index, frame in enumerate(frames):
            if not cv2.imwrite(str(temporary / f"{index:05d}.png"), np.ascontiguousarray(frame[..., ::-1])):
                raise OSError(f"could not write {temporary / f'{index:05d}.png'}")
        _remove(path)
        os.replace(temporary, path)
    finally:
        _remove(temporary)


def _annotation(
    name: str,
    split: str,
    identity_index: int,
    clip: int,
    seed: int,
    fps: float,
    size: int,
    keypoints: np.ndarray,
    params: dict[str, np.ndarray],
) -> dict[str, Any]:
    return {
        "name": name,
        "split": split,
        "identity_index": identity_index,
        "clip": clip,
        "seed": seed,
        "fps": fps,
        "size": size,
        "num_frames": len(keypoints),
        "generator_version": GENERATOR_VERSION,
        "keypoint_names": list(KEYPOINT_NAMES),
        "keypoints": np.round(keypoints.astype(np.float64), 3).tolist(),
        "params": {k: np.round(params[k].astype(np.float64), 5).tolist() for k in MOTION_FACTORS},
        "identity": FaceIdentity.from_seed(seed).to_dict(),
    }


def _check_arguments(
    num_train: int,
    num_test: int,
    num_frames: int,
    size: int,
    seed: int,
    layout: str,
    fps: float,
    clips_per_identity: int,
) -> None:
    _check_size(size)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "video" and size % 2:
        raise ValueError(
            f"layout 'video' (H.264 yuv420p) needs an even size, got {size}; use layout 'frames'"
        )
    for label, value, low in (
        ("num_train", num_train, 0),
        ("num_test", num_test, 0),
        ("num_frames", num_frames, 1),
        ("seed", seed, 0),
        ("clips_per_identity", clips_per_identity, 1),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    if num_train + num_test < 1:
        raise ValueError("num_train + num_test must be at least 1")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")


def make_synthetic_dataset(
    root: str | os.PathLike,
    num_train: int = 64,
    num_test: int = 8,
    num_frames: int = 32,
    size: int = 64,
    seed: int = 0,
    layout: str = "video",
    fps: float = 25,
    clips_per_identity: int = 1,
    progress: bool = True,
    crf: int = 12,
) -> dict[str, Any]:
    """Render and write a dataset (see the module docstring for the layout); returns the manifest.

    Args:
        root: output folder (created). Clips of an earlier run in ``train/`` and ``test/`` are replaced
            or, when this run does not write them, removed.
        num_train, num_test: number of clips per split.
        num_frames: frames per clip.
        size: frame side in pixels (32 to 256; even for ``layout="video"``).
        seed: dataset seed; the same arguments give the same frames.
        layout: ``"video"`` (MP4) or ``"frames"`` (PNG folders).
        fps: frame rate of the motion and of the MP4 files.
        clips_per_identity: consecutive clips that share a face (``id0000#00``, ``id0000#01`` ...).
        progress: show a tqdm progress bar.
        crf: H.264 quality for ``layout="video"`` (lower is closer to lossless).
    """
    _check_arguments(num_train, num_test, num_frames, size, seed, layout, fps, clips_per_identity)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _remove(root / MANIFEST_NAME)  # the dataset stops counting as complete while it is rewritten
    counts = {"train": int(num_train), "test": int(num_test)}
    splits: dict[str, list[dict[str, Any]]] = {}
    with tqdm(total=sum(counts.values()), desc="synthetic faces", unit="clip", disable=not progress) as bar:
        for split in SPLITS:
            folder = root / split
            folder.mkdir(exist_ok=True)
            splits[split] = []
            for index in range(counts[split]):
                identity_index, clip = divmod(index, clips_per_identity)
                name = clip_name(identity_index, clip)
                clip_seed = video_seed(seed, split, identity_index)
                frames, keypoints, params = render_video(clip_seed, num_frames, size, fps, clip)
                if layout == "video":
                    media = folder / f"{name}.mp4"
                    write_video(media, frames, fps, crf)
                else:
                    media = folder / name
                    write_frames(media, frames)
                annotation = folder / f"{name}.json"
                _write_json(
                    annotation,
                    _annotation(name, split, identity_index, clip, clip_seed, fps, size, keypoints, params),
                )
                splits[split].append(
                    {
                        "name": name,
                        "path": media.relative_to(root).as_posix(),
                        "annotation": annotation.relative_to(root).as_posix(),
                        "num_frames": num_frames,
                        "size": [size, size],
                        "seed": clip_seed,
                    }
                )
                bar.update(1)
            _remove_stale(folder, {root / e[key] for e in splits[split] for key in ("path", "annotation")})
    manifest = {
        "generator": GENERATOR_NAME,
        "generator_version": GENERATOR_VERSION,
        "lmtk_version": __version__,
        "seed": seed,
        "size": size,
        "num_frames": num_frames,
        "fps": fps,
        "layout": layout,
        "clips_per_identity": clips_per_identity,
        "crf": crf,
        "keypoint_names": list(KEYPOINT_NAMES),
        "motion_factors": list(MOTION_FACTORS),
        "splits": splits,
    }
    _write_json(root / MANIFEST_NAME, manifest)
    return manifest


def read_manifest(root: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of a complete dataset, or None when it is missing or unreadable."""
    try:
        return json.loads((Path(root) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None


def _manifest_value(manifest: dict[str, Any], key: str) -> Any:
    """The manifest's value of a :func:`make_synthetic_dataset` argument."""
    if key in ("num_train", "num_test"):
        split = manifest.get("splits", {}).get(key.removeprefix("num_"))
        return len(split) if isinstance(split, list) else None
    return manifest.get(key)


def synthetic_dataset_ready(root: str | os.PathLike, check_files: bool = True, **expected: Any) -> bool:
    """Whether ``root`` holds a complete dataset of this generator version.

    Args:
        root: dataset folder.
        check_files: also check that every listed clip and annotation exists.
        **expected: :func:`make_synthetic_dataset` arguments the dataset must have been written with,
            e.g. ``size=64, layout="video", num_train=96``; ``crf`` is compared for the video layout
            only (PNG frames are lossless), and ``progress`` (how rendering is shown) not at all.
    """
    manifest = read_manifest(root)
    if not isinstance(manifest, dict) or manifest.get("generator") != GENERATOR_NAME:
        return False
    if manifest.get("generator_version") != GENERATOR_VERSION:
        return False
    expected.pop("progress", None)
    if manifest.get("layout") != "video":
        expected.pop("crf", None)
    if any(_manifest_value(manifest, key) != value for key, value in expected.items()):
        return False
    if not check_files:
        return True
    entries: Sequence[dict[str, Any]] = [e for split in manifest.get("splits", {}).values() for e in split]
    return all(
        (Path(root) / e["path"]).exists() and (Path(root) / e["annotation"]).is_file() for e in entries
    )
