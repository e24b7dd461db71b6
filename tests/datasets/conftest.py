"""Tiny test videos whose frames encode their own index.

Frame ``t`` is grey level ``8 + 9 t`` except a black band over the left quarter: the grey level tells
which frame was decoded (after h264 or a resize), the band tells whether it was mirrored.
"""

from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from PIL import Image

NUM_FRAMES = 24
HEIGHT, WIDTH = 48, 64


def frame_pattern(t: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    frame = np.full((height, width, 3), 8 + 9 * t, np.uint8)
    frame[:, : width // 4] = 0
    return frame


def decode_index(frame: np.ndarray) -> int:
    """The frame index encoded in an (H, W, 3) uint8 frame, mirrored or not."""
    width = frame.shape[1]
    middle = frame[:, int(width * 0.375) : int(width * 0.625)]  # away from the band on either side
    return int(round((float(np.median(middle)) - 8) / 9))


def band_on_left(frame: np.ndarray) -> bool:
    quarter = frame.shape[1] // 4
    return float(frame[:, : quarter // 2].mean()) < float(frame[:, -quarter // 2 :].mean())


def tensor_to_frame(tensor) -> np.ndarray:
    """A (3, H, W) tensor in [-1, 1] back to (H, W, 3) uint8."""
    return ((tensor.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def write_video(path: Path, num_frames: int = NUM_FRAMES, height: int = HEIGHT, width: int = WIDTH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10"}
        for t in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(t, height, width), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_frame_folder(path: Path, num_frames: int = NUM_FRAMES, ext: str = ".png") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for t in range(num_frames):
        # Not zero-padded on purpose: readers must sort frame_10 after frame_9.
        Image.fromarray(frame_pattern(t)).save(path / f"frame_{t}{ext}")
    return path


@pytest.fixture(scope="session")
def pattern() -> SimpleNamespace:
    """The frame pattern and its decoders (fixtures, because test modules cannot import conftest)."""
    return SimpleNamespace(
        num_frames=NUM_FRAMES,
        height=HEIGHT,
        width=WIDTH,
        frame=frame_pattern,
        decode_index=decode_index,
        band_on_left=band_on_left,
        tensor_to_frame=tensor_to_frame,
    )


@pytest.fixture
def make_video():
    return write_video


@pytest.fixture
def make_frame_folder():
    return write_frame_folder


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    """Flat folder: three videos of two identities, one frame folder, and a stray image."""
    root = tmp_path_factory.mktemp("flat")
    write_video(root / "id001#a#001.mp4")
    write_video(root / "id001#b#002.mp4", num_frames=12)
    write_video(root / "id002#a#001.mp4")
    write_frame_folder(root / "id003#c#001")
    Image.fromarray(frame_pattern(0)).save(root / "portrait.png")  # a single image is not a video
    return root


@pytest.fixture(scope="session")
def vox_png_dir(tmp_path_factory) -> Path:
    """FOMM vox-png layout: frame folders (and one mp4) under train/ and test/."""
    root = tmp_path_factory.mktemp("vox-png")
    write_frame_folder(root / "train" / "id100#x#001", num_frames=16)
    write_frame_folder(root / "train" / "id100#y#002", num_frames=16, ext=".jpg")
    write_video(root / "train" / "id200#z#001.mp4", num_frames=16)
    write_frame_folder(root / "test" / "id300#w#001", num_frames=16)
    return root
