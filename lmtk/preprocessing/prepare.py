"""Turn raw footage (phone videos, interviews) into face clips that the training datasets read.

For each source video: find the face on every ``detect_every``-th frame (:mod:`.face_detection`),
follow it and cut it into clips at shot cuts, lost faces and large moves (:mod:`.face_tracks`), crop
every clip with one fixed square box and resize it to the model size (:mod:`.crop`), and write::

    root/train/<source>#000.mp4        (layout "video"; "frames": root/train/<source>#000/00000.png ...)
    root/test/...                      whole source videos go to one split, chosen by a hash of the name
    root/manifest.json                 written last: clips (source, frame and time range, box), skipped
    root/report.txt                    the same for people: what was made, what was skipped and why

Clip names start with the source name and a ``#``, so ``group_by_identity`` treats the clips of one
source as one identity. Videos without a usable face are skipped with a reason; the run goes on.
A run into a folder that holds an earlier run's manifest adds to it: the entries of the sources
processed again are replaced, the others kept (a :class:`PrepareWarning` says when they were made with
other settings).

Example:
    >>> manifest = prepare_dataset(["phone_videos/"], "data/mine", size=256)  # doctest: +SKIP
    >>> [clip["name"] for clip in manifest["clips"]][:2]  # doctest: +SKIP
    ['beach#000', 'beach#001']
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import multiprocessing
import os
import re
import shutil
import signal
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from lmtk.datasets.synthetic.writer import write_frames, write_video
from lmtk.datasets.video_reader import find_videos, is_frame_folder, is_video_file, open_video
from lmtk.version import __version__

from .crop import PAD_MODES, Box, crop_to_box
from .face_detection import INSTALL_HINT, dlib_model_path
from .face_tracks import FaceTrack, scan_video, track_faces

__all__ = [
    "LAYOUTS",
    "MANIFEST_NAME",
    "REPORT_NAME",
    "PrepareOptions",
    "PrepareWarning",
    "collect_videos",
    "prepare_dataset",
    "process_video",
    "source_names",
    "split_for",
]

LAYOUTS = ("video", "frames")
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.txt"
SPLITS = ("train", "test")
TOOL_NAME = "lmtk.prepare_dataset"
# the earlier manifest while a run rewrites the dataset (manifest.json is absent until the run ends)
PREVIOUS_NAME = ".manifest.previous.json"

# Frames cropped and held in memory per clip are capped by max_frames; decoding goes this many at a time.
_DECODE_CHUNK = 16


class PrepareWarning(UserWarning):
    """Something about a run worth knowing that did not stop it (e.g. clips made with other settings)."""


@dataclass(frozen=True)
class PrepareOptions:
    """How clips are found, framed and written.

    Args:
        size: output side in pixels (even for layout ``"video"``).
        layout: ``"video"`` (H.264 MP4) or ``"frames"`` (PNG folders).
        keyframe_interval: most frames between keyframes of an MP4 clip. Training reads random frames,
            and each read decodes from the keyframe before it: at 256 px, 8 reads a random pair about 4.7x
            as fast as the encoder's default interval (250) for 1.2x the file size; 1 (every frame a
            keyframe) as fast as PNG folders at a tenth of their size (docs/own_data.md).
        margin: room around the face on each side, in face sizes (box side ``(1 + 2·margin)`` faces).
        shift: downward move of the box, in face sizes.
        detect_every: run the detector on every this-many frames.
        detect_size: the detector sees frames shrunk to this longer side (faces down to about 1/8
            of it are found).
        upsample: times the detector doubles each frame first: 1 finds faces down to about 40 px
            instead of 80 (small or low-resolution footage), at about 4x the detection time.
        min_frames: shorter clips are dropped.
        max_frames: longer clips are cut into consecutive pieces (0: no limit); caps memory per clip.
        split: fraction of source videos that go to ``train``.
        pad: how a box reaching outside the frame is filled, ``"edge"`` or ``"constant"`` (black).
        max_gap: most frames without a face inside a clip (None: ``max(4, 2·detect_every)``).
        max_jump: a move or size change between key frames above this (face sizes) is a shot cut.
        max_drift: a clip ends when its face has moved this far (None: ``min(0.5, margin)``, so the
            face stays inside the fixed box).
        sigma: track smoothing in frames.
    """

    size: int = 256
    layout: str = "video"
    keyframe_interval: int = 8
    margin: float = 0.6
    shift: float = 0.1
    detect_every: int = 5
    detect_size: int = 640
    upsample: int = 0
    min_frames: int = 32
    max_frames: int = 1000
    split: float = 0.9
    pad: str = "edge"
    max_gap: int | None = None
    max_jump: float = 0.5
    max_drift: float | None = None
    sigma: float = 5.0

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.size < 16:
            raise ValueError(f"size must be at least 16, got {self.size}")
        if self.layout == "video" and self.size % 2:
            raise ValueError(f"layout 'video' (H.264 yuv420p) needs an even size, got {self.size}")
        if self.keyframe_interval < 1:
            raise ValueError(f"keyframe_interval must be >= 1, got {self.keyframe_interval}")
        if not 0 <= self.split <= 1:
            raise ValueError(f"split must be in [0, 1], got {self.split}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.detect_every < 1 or self.min_frames < 2 or self.max_frames < 0:
            raise ValueError("detect_every must be >= 1, min_frames >= 2 and max_frames >= 0")
        if self.max_frames and self.max_frames < self.min_frames:
            raise ValueError(f"max_frames ({self.max_frames}) must be 0 or >= min_frames ({self.min_frames})")
        if self.detect_size < 64:
            raise ValueError(f"detect_size must be at least 64, got {self.detect_size}")
        if not 0 <= self.upsample <= 2:
            raise ValueError(f"upsample must be 0, 1 or 2, got {self.upsample}")
        if self.pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {', '.join(PAD_MODES)}, got {self.pad!r}")

    @property
    def gap(self) -> int:
        return self.max_gap if self.max_gap is not None else max(4, 2 * self.detect_every)

    @property
    def drift(self) -> float:
        return self.max_drift if self.max_drift is not None else max(0.05, min(0.5, self.margin))


def split_for(name: str, train_fraction: float) -> str:
    """``"train"`` or ``"test"`` for a source name: a hash, so the split never depends on what else is there."""
    value = int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big") / 2**64
    return "train" if value < train_fraction else "test"


def collect_videos(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """The source videos named by ``inputs``: video files, frame folders, and the videos inside folders.

    Raises:
        FileNotFoundError: an input does not exist.
        ValueError: an input is neither a video nor a folder, or nothing at all was found.
    """
    videos: dict[Path, None] = {}
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"input not found: {path}")
        # A folder holding videos is a folder of videos, even with portraits beside them (the demo layout).
        inside = find_videos(path) if path.is_dir() else []
        if is_video_file(path) or (is_frame_folder(path) and not inside):
            videos[path] = None
        elif path.is_dir():
            videos.update(dict.fromkeys(inside))
        else:
            raise ValueError(f"not a video file or a folder: {path}")
    if not videos:
        raise ValueError(f"no videos in {', '.join(str(Path(i)) for i in inputs)}")
    return list(videos)


def source_names(videos: Sequence[Path], earlier: Mapping[str, str] | None = None) -> list[str]:
    """A distinct, ``#``-free name per source: its file stem, or the stem plus a short path hash.

    Args:
        videos: this run's sources.
        earlier: source name -> source path of an earlier run into the same dataset. A source named
            there keeps its name (so its clips and split stay); a stem given to another source there
            gets the hash, so that source's clips are never replaced.

    The hash is also added where this run has the stem more than once.
    """
    earlier = dict(earlier or {})
    named_before = {_same_file(source): name for name, source in earlier.items()}
    stems = [
        re.sub(r"[#\s]+", "_", path.stem if path.is_file() else path.name).strip("_.") or "video"
        for path in videos
    ]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    names = []
    for stem, path in zip(stems, videos):
        before = named_before.get(_same_file(path))
        if before is not None:
            names.append(before)
        elif counts[stem] == 1 and stem not in earlier:
            names.append(stem)
        else:
            names.append(f"{stem}_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:6]}")
    return names


def _same_file(path: str | os.PathLike) -> str:
    return str(Path(path).resolve())


def _earlier_names(previous: Mapping[str, Any] | None) -> dict[str, str]:
    """Source name -> source path of an earlier manifest's clips and skipped videos."""
    entries = [*previous.get("clips", []), *previous.get("skipped", [])] if previous else []
    return {
        str(entry["name"]).split("#")[0]: str(entry["source"])
        for entry in entries
        if isinstance(entry, Mapping) and entry.get("name") and entry.get("source")
    }


def _remove_clips(output: Path, name: str, finished: bool = True, written_since: float | None = None) -> None:
    """Delete the clips of source ``name`` in the split folders: the temporary files an interrupted
    write left, and with ``finished`` also its finished clips (an earlier run's, before a rerun), or
    with ``written_since`` (a ``time.time()``) the finished clips modified since then."""
    clip = re.escape(name) + r"#\d{3,}(\.mp4)?"
    temporary = r"\." + clip + r"\.tmp\d+"  # the writers' ".<clip>.tmp<pid>"
    pattern = re.compile(f"{temporary}|{clip}")
    for split in SPLITS:
        folder = output / split
        for path in folder.iterdir() if folder.is_dir() else []:
            if not pattern.fullmatch(path.name):
                continue
            half_written = path.name.startswith(".")
            written_now = written_since is not None and path.stat().st_mtime >= written_since
            if not (finished or half_written or written_now):
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def _pieces(track: FaceTrack, min_frames: int, max_frames: int) -> list[FaceTrack]:
    """The track cut into equal consecutive pieces of at most ``max_frames`` (all kept as one box)."""
    if len(track) < min_frames:
        return []
    count = -(-len(track) // max_frames) if max_frames else 1
    bounds = np.linspace(0, len(track), count + 1).round().astype(int)
    return [track[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= min_frames]


_DETECTOR: Any = None


def _detector(options: PrepareOptions) -> Any:
    # one detector per process: loading the landmark model takes about a second
    global _DETECTOR
    if _DETECTOR is None or (_DETECTOR.max_side, _DETECTOR.upsample) != (
        options.detect_size,
        options.upsample,
    ):
        from .face_detection import FaceDetector

        _DETECTOR = FaceDetector(max_side=options.detect_size, upsample=options.upsample)
    return _DETECTOR


def _write_clip(
    reader: Any, track: FaceTrack, box: Box, path: Path, fps: float, options: PrepareOptions
) -> None:
    crops = []
    for begin in range(track.start, track.end, _DECODE_CHUNK):
        indices = range(begin, min(begin + _DECODE_CHUNK, track.end))
        crops.extend(
            crop_to_box(frame, box, options.size, options.pad) for frame in reader.get_frames(indices)
        )
    frames = np.stack(crops)
    if options.layout == "video":
        write_video(path, frames, fps, keyframe_interval=options.keyframe_interval)
    else:
        write_frames(path, frames)


def _skip_reason(num_keys: int, detections: int, tracks: list[FaceTrack], options: PrepareOptions) -> str:
    if not detections:
        hint = "; faces under about 80 px need upsample=1 (--upsample 1)" if not options.upsample else ""
        return f"no face found in {num_keys} checked frames{hint}"
    longest = max((len(track) for track in tracks), default=0)
    return (
        f"no steady face for {options.min_frames} frames (face in {detections} of {num_keys} checked "
        f"frames, longest track {longest} frames)"
    )


def process_video(
    path: str | os.PathLike, name: str, split: str, output: str | os.PathLike, options: PrepareOptions
) -> dict[str, Any]:
    """Find, crop and write the clips of one source video.

    Returns:
        ``{"source", "name", "split", "clips": [clip entries], "reason": None or why nothing was made}``;
        errors while reading a video become a reason rather than an exception.
    """
    path, output = Path(path), Path(output)
    result: dict[str, Any] = {"source": str(path), "name": name, "split": split, "clips": [], "reason": None}
    try:
        _remove_clips(output, name)  # a rerun with other settings must leave no extras
        reader = open_video(path)
        num_frames = len(reader)
        if num_frames < options.min_frames:
            result["reason"] = f"only {num_frames} frames, fewer than min_frames={options.min_frames}"
            return result
        fps = float(reader.fps) or 25.0
        frames, faces = scan_video(reader, _detector(options), options.detect_every)
        tracks = track_faces(
            frames,
            faces,
            num_frames,
            max_gap=options.gap,
            max_jump=options.max_jump,
            sigma=options.sigma,
            max_drift=options.drift,
        )
        clips = [
            piece for track in tracks for piece in _pieces(track, options.min_frames, options.max_frames)
        ]
        if not clips:
            result["reason"] = _skip_reason(len(frames), sum(bool(f) for f in faces), tracks, options)
            return result
        (output / split).mkdir(parents=True, exist_ok=True)
        for index, clip in enumerate(clips):
            clip_name = f"{name}#{index:03d}"
            media = output / split / (f"{clip_name}.mp4" if options.layout == "video" else clip_name)
            box = clip.box(options.margin, options.shift)
            _write_clip(reader, clip, box, media, fps, options)
            result["clips"].append(
                {
                    "name": clip_name,
                    "split": split,
                    "path": media.relative_to(output).as_posix(),
                    "source": str(path),
                    "start_frame": clip.start,
                    "end_frame": clip.end,
                    "num_frames": len(clip),
                    "start_time": round(clip.start / fps, 3),
                    "end_time": round(clip.end / fps, 3),
                    "fps": fps,
                    "box": box.to_list(),
                }
            )
    except Exception as error:  # decord and PyAV raise their own error classes
        # one broken file must not end a run over hundreds; it is reported instead
        result["reason"] = f"{type(error).__name__}: {' '.join(str(error).split())}"
    return result


def _run_job(job: tuple[Path, str, str, Path, PrepareOptions]) -> dict[str, Any]:
    return process_video(*job)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # the workers already fill the cores
    # Ctrl-C reaches the whole process group: the parent alone handles it and ends the pool, whose
    # SIGTERM then ends a worker quietly (the parent removes what it left half-written)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _check_dlib() -> None:
    # checked without importing dlib, so forked workers start from a parent that never touched it
    if importlib.util.find_spec("dlib") is None:
        raise ImportError(f"face detection needs dlib: {INSTALL_HINT}")
    dlib_model_path()


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _report(manifest: dict[str, Any], notes: Sequence[str] = ()) -> str:
    counts = {split: len(names) for split, names in manifest["splits"].items()}
    made = len({clip["source"] for clip in manifest["clips"]})
    lines = [
        f"{len(manifest['clips'])} clips ({counts['train']} train, {counts['test']} test) from {made} of "
        f"{made + len(manifest['skipped'])} videos, {manifest['size']} px, layout {manifest['layout']}"
    ]
    lines += [f"warning: {note}" for note in notes]
    for clip in manifest["clips"]:
        lines.append(
            f"{clip['name']} ({clip['split']}): {clip['source']} frames {clip['start_frame']}-"
            f"{clip['end_frame']} ({clip['start_time']:.2f}-{clip['end_time']:.2f} s)"
        )
    lines += [f"skipped {entry['source']}: {entry['reason']}" for entry in manifest["skipped"]]
    return "\n".join(lines) + "\n"


def _read_previous(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest of an earlier run (moved to ``path``) or None, and a note when it is unusable."""
    if not path.is_file():
        return None, None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        problem = f"{type(error).__name__}: {error}"
    else:
        if isinstance(manifest, dict) and isinstance(manifest.get("clips"), list):
            return manifest, None
        problem = "it has no clip list"
    note = (
        f"the manifest of an earlier run is not readable ({problem}); the new one lists only this run's clips"
    )
    return None, note


def _inside(output: Path, relative: str) -> Path | None:
    """``output / relative`` when it lies in one of the split folders (a manifest entry's clip path)."""
    path = (output / relative).resolve()
    splits = [(output / split).resolve() for split in SPLITS]
    return path if any(folder in path.parents for folder in splits) else None


def _merge(
    previous: dict[str, Any] | None,
    results: list[dict[str, Any]],
    options: PrepareOptions,
    output: Path,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The manifest's clips and skipped entries: this run's, and the earlier run's of other sources.

    An earlier entry is replaced when its source or its source name (the part of a clip name before
    ``#``) was processed in this run; a replaced clip that this run did not overwrite (its source now
    has another name) is deleted. Earlier clips whose files are gone are left out. Returns
    ``(clips, skipped, notes)``, notes saying what to know.
    """
    clips = [clip for result in results for clip in result["clips"]]
    skipped = [
        {"source": r["source"], "name": r["name"], "reason": r["reason"]} for r in results if r["reason"]
    ]
    if previous is None:
        return clips, skipped, []
    sources = {result["source"] for result in results}
    names = {result["name"] for result in results}

    def replaced(entry: dict[str, Any]) -> bool:
        name = str(entry.get("name", "")).split("#")[0]
        return entry.get("source") in sources or name in names

    kept = []
    for clip in previous["clips"]:
        if not replaced(clip):
            if clip.get("path") and (output / clip["path"]).exists():  # not deleted by hand since
                kept.append(clip)
        elif clip["name"].split("#")[0] not in names and (path := _inside(output, clip.get("path", ""))):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    kept_skipped = [entry for entry in previous.get("skipped", []) if not replaced(entry)]
    notes = []
    earlier = previous.get("options") or {}
    changed = [
        f"{key} {earlier[key]} -> {value}"
        for key, value in asdict(options).items()
        if key in earlier and earlier[key] != value
    ]
    if kept and changed:
        notes.append(
            f"{len(kept)} {'clip' if len(kept) == 1 else 'clips'} of an earlier run, kept in the "
            f"manifest, made with other settings ({', '.join(changed)}); rerun their videos or use a new "
            "output folder for one consistent dataset"
        )
    clips = sorted(kept + clips, key=lambda clip: clip["name"])
    skipped = sorted(kept_skipped + skipped, key=lambda entry: entry["source"])
    return clips, skipped, notes


def prepare_dataset(
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    options: PrepareOptions | None = None,
    workers: int = 1,
    progress: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """Make a training dataset from source videos (see the module docstring for what is written).

    Args:
        inputs: video files, frame folders, or folders of them.
        output: the dataset root (created). Clips of the same sources from an earlier run are replaced;
            the manifest keeps the earlier run's entries of other sources.
        options: a :class:`PrepareOptions`; or give its fields as keyword arguments.
        workers: processes working on separate videos (1: this process).
        progress: show a tqdm progress bar over the videos.

    Returns:
        the manifest (also written to ``output/manifest.json``): this run's clips and those kept from
        earlier runs.

    Warns:
        PrepareWarning: clips kept from an earlier run were made with other settings, or the earlier
            manifest could not be read.

    Raises:
        FileNotFoundError, ValueError: bad inputs or options (see :func:`collect_videos`).
        ImportError: dlib or its landmark model is missing.
    """
    if options is None:
        options = PrepareOptions(**kwargs)
    elif kwargs:
        options = replace(options, **kwargs)
    videos = collect_videos(inputs)
    _check_dlib()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if (output / MANIFEST_NAME).is_file():
        # the dataset is not complete while it is rewritten; an interrupted run leaves the copy to read
        os.replace(output / MANIFEST_NAME, output / PREVIOUS_NAME)
    previous, unreadable = _read_previous(output / PREVIOUS_NAME)
    names = source_names(videos, _earlier_names(previous))
    jobs = [
        (path, name, split_for(name, options.split), output, options) for path, name in zip(videos, names)
    ]
    results: list[dict[str, Any]] = []
    started = time.time()
    try:
        with tqdm(total=len(jobs), desc="prepare", unit="video", disable=not progress) as bar:
            if workers > 1 and len(jobs) > 1:
                # fork: the parent holds no decoder and no detector, and workers skip re-importing torch
                method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
                context = multiprocessing.get_context(method)
                # leaving the pool ends its workers, also when Ctrl-C or SIGTERM stops the parent
                with context.Pool(min(workers, len(jobs)), _init_worker) as pool:
                    for result in pool.imap_unordered(_run_job, jobs):
                        results.append(result)
                        bar.set_postfix(clips=sum(len(r["clips"]) for r in results), refresh=False)
                        bar.update(1)
            else:
                for job in jobs:
                    results.append(_run_job(job))
                    bar.set_postfix(clips=sum(len(r["clips"]) for r in results), refresh=False)
                    bar.update(1)
    except KeyboardInterrupt:
        # the videos done so far are kept in the manifest; what this run wrote of the others goes (a
        # video cut off halfway has some clips finished), their earlier clips stay where not yet replaced
        done = {result["name"] for result in results}
        for name in names:
            if name not in done:
                _remove_clips(output, name, finished=False, written_since=started)
        note = f"interrupted after {len(results)} of {len(jobs)} videos: run the same command again to finish"
        _write_manifest(output, previous, results, options, [unreadable, note])
        raise
    manifest = _write_manifest(output, previous, results, options, [unreadable])
    return manifest


def _write_manifest(
    output: Path,
    previous: dict[str, Any] | None,
    results: list[dict[str, Any]],
    options: PrepareOptions,
    notes: Sequence[str | None],
) -> dict[str, Any]:
    """Merge this run's results into the earlier manifest, warn, and write manifest.json and report.txt."""
    results = sorted(results, key=lambda result: result["name"])
    clips, skipped, merge_notes = _merge(previous, results, options, output)
    notes = [note for note in notes if note] + merge_notes
    for note in notes:
        warnings.warn(note, PrepareWarning, stacklevel=3)
    manifest = {
        "tool": TOOL_NAME,
        "lmtk_version": __version__,
        "size": options.size,
        "layout": options.layout,
        "options": asdict(options),
        "clips": clips,
        "skipped": skipped,
        "splits": {split: [clip["name"] for clip in clips if clip["split"] == split] for split in SPLITS},
        "this_run": {
            "videos": len(results),
            "clips": sum(len(result["clips"]) for result in results),
            "skipped": sum(1 for result in results if result["reason"]),
        },
    }
    _write_text(output / REPORT_NAME, _report(manifest, notes))
    _write_text(output / MANIFEST_NAME, json.dumps(manifest, indent=1))
    (output / PREVIOUS_NAME).unlink(missing_ok=True)
    return manifest
