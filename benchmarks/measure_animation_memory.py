"""Measure what streaming, batched animation buys: speed against a naive loop, and bounded memory.

``speed``: frames per second of :class:`lmtk.apis.Animator` (source encoded once, driving frames batched,
motion code only) against a naive loop that calls ``model.transfer(source, frame)`` per frame (the source
is encoded again for every frame), both in absolute mode on the same random frames with the full-size (256 px) network.

``memory``: peak resident memory of a process that animates a generated video into an mp4 with a tiny
(32 px) network, for a short and a ten times longer video. Each run is a fresh subprocess, so
``ru_maxrss`` is that run's own peak. The peak should not grow with the video length, since the Animator
decodes ``chunk_size`` frames at a time and the writer encodes frames as they come. For contrast, each
length also runs the load-everything way (all frames decoded into one array, animated, then written),
whose peak grows with the length.

Usage::

    python benchmarks/measure_animation_memory.py speed [--frames 16] [--batch-sizes 1 8] [--size 256]
    python benchmarks/measure_animation_memory.py memory [--lengths 200 2000] [--workdir /tmp/lmtk_memory]

The generated videos and outputs go to ``--workdir`` (a temporary folder by default), never the repo.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from lmtk.cli import ArgumentParser, available_device, positive_int
from lmtk.registry import build


def full_model(size: int = 256) -> torch.nn.Module:
    """The published-size LIA network (random weights: speed and memory do not depend on them)."""
    return build(
        dict(
            type="lmtk.LIA.v1",
            encoder=dict(type="lmtk.LIAEncoder.v1", size=size),
            generator=dict(type="lmtk.FlowGenerator.v1", size=size),
            motion_basis=dict(type="lmtk.GramSchmidtBasis.v1"),
        )
    ).eval()


def tiny_config(size: int = 32) -> dict:
    shape = dict(size=size, latent_dim=32, channel_base=256, max_channels=32)
    return dict(
        type="lmtk.LIA.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", **shape),
        generator=dict(type="lmtk.FlowGenerator.v1", **shape),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
    )


def measure_speed(
    frames: int,
    batch_sizes: list[int],
    size: int,
    repeats: int = 2,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict:
    """Best-of-``repeats`` frames per second, the runs interleaved so machine load hits both alike."""
    from lmtk.apis import Animator
    from lmtk.functional import uint8_to_float

    torch.manual_seed(0)
    device = torch.device(device)
    model = full_model(size).to(device)
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    driving = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    source_t = uint8_to_float(torch.from_numpy(source).permute(2, 0, 1)[None]).to(device)
    driving_t = uint8_to_float(torch.from_numpy(driving).permute(0, 3, 1, 2)).to(device)
    animators = {
        b: Animator(model, device=device, dtype=dtype, batch_size=b, chunk_size=max(b, 64))
        for b in batch_sizes
    }
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def naive() -> None:
        with torch.inference_mode():
            for i in range(frames):
                model.transfer(source_t, driving_t[i : i + 1], mode="absolute")
        sync()

    def batched(animator: Animator) -> None:
        assert sum(1 for _ in animator.animate(source, driving, mode="absolute")) == frames

    with torch.inference_mode():
        model.transfer(source_t, driving_t[:1])  # warm-up: allocator and kernel selection
    for animator in animators.values():
        list(animator.animate(source, driving[: animator.batch_size], mode="absolute"))
    best = {"naive": 0.0, **{f"animator_batch{b}": 0.0 for b in batch_sizes}}
    for _ in range(repeats):
        runs = [("naive", naive)] + [
            (f"animator_batch{b}", lambda a=a: batched(a)) for b, a in animators.items()
        ]
        for name, run in runs:
            sync()
            start = time.perf_counter()
            run()
            best[name] = max(best[name], frames / (time.perf_counter() - start))
    result = dict(size=size, frames=frames, device=str(device), dtype=dtype, repeats=repeats)
    result["threads"] = torch.get_num_threads()
    result.update({f"{name}_fps": round(fps, 3) for name, fps in best.items()})
    result.update(
        {f"speedup_batch{b}": round(best[f"animator_batch{b}"] / best["naive"], 2) for b in batch_sizes}
    )
    return result


def make_video(path: Path, num_frames: int, size: int = 64, fps: int = 25) -> Path:
    """A moving-square clip, written with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for i in range(num_frames):
            frame = np.full((size, size, 3), 40, np.uint8)
            x = int((size - 16) * (0.5 + 0.5 * np.sin(i / 10)))
            frame[24:40, x : x + 16] = 220
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child_animate(video: Path, output: Path, whole: bool = False) -> dict:
    """Animate ``video`` into ``output`` in this process; report the peak RSS before and after.

    ``whole=True`` is the load-everything baseline: all frames decoded into memory, animated as one array
    (``Animator.animate_frames``), then written.
    """
    from lmtk.apis import Animator, VideoWriter, video_frame_rate
    from lmtk.datasets.video_reader import open_video

    torch.set_num_threads(1)  # memory is measured, not speed; one thread keeps shared machines responsive
    torch.manual_seed(0)
    animator = Animator(build(tiny_config()).eval(), batch_size=16, chunk_size=64)
    source = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    list(
        animator.animate(source, np.zeros((16, 64, 64, 3), np.uint8))
    )  # warm-up, so setup is in the baseline
    baseline = _peak_rss_mib()
    start = time.perf_counter()
    with VideoWriter(output, video_frame_rate(video)) as writer:
        if whole:
            reader = open_video(video)
            frames = reader.get_frames(range(len(reader)))
            for frame in animator.animate_frames(source, frames, mode="relative", output="numpy"):
                writer.write(frame)
        else:
            for frame in animator.animate(source, video, mode="relative"):
                writer.write(frame)
    return dict(
        mode="whole video" if whole else "streaming",
        frames=writer.frames,
        seconds=round(time.perf_counter() - start, 2),
        baseline_mib=round(baseline, 1),
        peak_mib=round(_peak_rss_mib(), 1),
    )


def measure_memory(lengths: list[int], workdir: Path, whole: bool = True) -> list[dict]:
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path]))
    results = []
    for length in lengths:
        video = make_video(workdir / f"moving_{length}.mp4", length)
        for flag in ([], ["--whole"]) if whole else ([],):
            command = [sys.executable, __file__, "_child", str(video), str(workdir / "animated.mp4"), *flag]
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            results.append(dict(video_frames=length, **json.loads(done.stdout.strip().splitlines()[-1])))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    speed = commands.add_parser("speed", help="Animator vs a naive per-frame loop, full-size network")
    speed.add_argument("--frames", type=positive_int, default=16)
    speed.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[1, 8])
    speed.add_argument("--repeats", type=positive_int, default=2)
    speed.add_argument("--device", type=available_device, default="cpu")
    speed.add_argument(
        "--dtype", default="float32", help="Animator autocast dtype (the naive loop stays fp32)"
    )
    speed.add_argument("--size", type=positive_int, default=256)
    memory = commands.add_parser("memory", help="peak RSS for a short and a long video, tiny network")
    memory.add_argument("--lengths", type=positive_int, nargs="+", default=[200, 2000])
    memory.add_argument("--workdir", type=Path, default=None)
    memory.add_argument("--no-baseline", action="store_true", help="skip the load-everything runs")
    child = commands.add_parser("_child")  # one memory run, in its own process
    child.add_argument("video", type=Path)
    child.add_argument("output", type=Path)
    child.add_argument("--whole", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "speed":
        print(
            json.dumps(
                measure_speed(args.frames, args.batch_sizes, args.size, args.repeats, args.device, args.dtype)
            )
        )
    elif args.command == "memory":
        if args.workdir is None:
            with tempfile.TemporaryDirectory(prefix="lmtk_memory_") as folder:
                results = measure_memory(args.lengths, Path(folder), not args.no_baseline)
        else:
            results = measure_memory(args.lengths, args.workdir, not args.no_baseline)
        for result in results:
            print(json.dumps(result))
    else:
        print(json.dumps(child_animate(args.video, args.output, args.whole)))


if __name__ == "__main__":
    main()
