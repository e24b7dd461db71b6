"""Same-identity reconstruction (paper §4.2 a): first frame as source, every frame as driving."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch

from ..datasets.transforms import frame_to_tensor, resize_image
from ..datasets.video_reader import open_video

__all__ = ["iter_video_frames", "reconstruct_video"]


def iter_video_frames(
    path: str | os.PathLike, size: int, chunk: int = 32, max_frames: int | None = None
) -> Iterator[torch.Tensor]:
    """Frames of a video as ``(N, 3, size, size)`` tensors in [-1, 1], ``chunk`` at a time."""
    reader = open_video(path)
    total = len(reader) if max_frames is None else min(len(reader), max_frames)
    for start in range(0, total, chunk):
        frames = reader.get_frames(list(range(start, min(start + chunk, total))))
        yield torch.stack([frame_to_tensor(resize_image(f, size)) for f in frames])


@torch.no_grad()
def reconstruct_video(
    model, path: str | os.PathLike, batch_size: int = 16, max_frames: int | None = None
) -> tuple[dict, list[torch.Tensor]]:
    """Reconstruct a video from its first frame by absolute transfer; L1 is on [0, 1] images.

    Returns ``{"l1", "l1_repeat_source", "num_frames"}`` (the model's L1 and that of the trivial answer
    "repeat the source frame") and the generated chunks (``(N, 3, S, S)`` in [-1, 1]).
    """
    device = next(model.parameters()).device
    net = model.net
    source = None
    errors, baseline, outputs, count = 0.0, 0.0, [], 0
    for frames in iter_video_frames(path, model.size, chunk=batch_size, max_frames=max_frames):
        frames = frames.to(device)
        if source is None:
            source = frames[:1]
            encoded = net.encode_source(source)
        batch = frames.shape[0]
        fake = net.animate(encoded, net.motion(frames)[1])  # eq. 11
        errors += ((fake.clamp(-1, 1) - frames).abs().mean(dim=(1, 2, 3)) / 2).sum().item()
        baseline += ((source - frames).abs().mean(dim=(1, 2, 3)) / 2).sum().item()
        outputs.append(fake.cpu())
        count += batch
    if count == 0:
        raise ValueError(f"{path} has no frames")
    return {"l1": errors / count, "l1_repeat_source": baseline / count, "num_frames": count}, outputs
