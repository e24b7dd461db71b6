"""Evaluate a checkpoint with the paper's protocols and write metrics.json and per_video.csv.

    python tools/test.py CONFIG CHECKPOINT [--protocol recon|transfer] [--data-root DIR] [--split test]
        [--max-videos N] [--max-frames N] [--metrics l1 lpips akd mkr aed fid] [--keypoints auto|dlib68|synthetic]
        [--work-dir DIR] [--save-videos] [--device cpu|cuda] [--batch-size 16]
        [--dtype bfloat16] [--channels-last] [--blur IMPL] [--compile [--freeze]]

CONFIG is the training config: it names the data root (``test_dataloader`` or ``train_dataloader``
dataset's ``data_root``) and, for an lmtk checkpoint that stores no config, the architecture. CHECKPOINT is
an lmtk or a published LIA checkpoint. Videos are read from ``DATA_ROOT/SPLIT``, or from ``DATA_ROOT``
itself when it has no such folder. A synthetic data root named by the config is rendered first if missing.

Without ``--metrics``, every default metric that can run does, and the others are reported as skipped
with the reason (dlib not installed, AlexNet weights not in the torchvision cache ...). Metrics named with
``--metrics`` must run: one that cannot stops the tool with an error line and exit status 1. Options that
would be ignored (``--skip-source-frame`` under transfer, ``--num-pairs``/``--seed`` under recon,
``--fid-*`` without fid) are refused with an error line and exit status 2.

Example::

    python tools/test.py configs/lia/lia_synthetic_m20.py work_dirs/lia_synthetic_m20/iter_1500.pth
    python tools/test.py configs/lia/lia_vox_m20.py vox.pt --data-root data/vox --max-frames 100 \\
        --metrics l1 lpips akd aed --device cuda
    # the fast paths of docs/performance.md: bf16 changes the metrics in the third digit or so
    python tools/test.py configs/lia/lia_vox_m20.py vox.pt --device cuda --batch-size 64 \\
        --dtype bfloat16 --channels-last --blur folded --compile
    # and how much the animation shakes, raw and with motion smoothing (docs/deploy.md)
    python tools/test.py configs/lia/lia_vox_m20.py vox.pt --data-root data/vox --jitter --smooth
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os.path as osp
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

import torch  # noqa: E402

from lmtk.cli import (  # noqa: E402
    ArgumentParser,
    add_device_argument,
    add_fast_path_arguments,
    add_smoothing_arguments,
    add_trust_checkpoint_argument,
    fast_path_overrides,
    interrupted_exit_code,
    interrupted_word,
    output_folder,
    positive_int,
    print_error,
    refuse_inert_fast_path_options,
    sigterm_as_interrupt,
    smoothing_filter,
)

METRICS = ("l1", "lpips", "akd", "mkr", "aed", "fid")
DEFAULT_METRICS = ("l1", "lpips", "akd", "mkr", "aed")
KEYPOINTS = ("auto", "dlib68", "synthetic")
# what a metric that cannot be built raises: a missing optional package, model file or weights file
_UNAVAILABLE = (ImportError, FileNotFoundError, OSError)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "config", help="training config (data root; architecture for config-less checkpoints)"
    )
    parser.add_argument(
        "checkpoint", help="lmtk or published LIA checkpoint, or a training work dir (its newest checkpoint)"
    )
    add_trust_checkpoint_argument(parser)
    parser.add_argument("--protocol", choices=("recon", "transfer"), default="recon", help="default recon")
    parser.add_argument("--data-root", help="dataset folder (default: the config's data_root)")
    parser.add_argument("--split", default="test", help="sub-folder of the data root (default test)")
    parser.add_argument(
        "--max-videos", type=positive_int, help="evaluate the first N videos (sorted by name)"
    )
    parser.add_argument("--max-frames", type=positive_int, help="frames per video (default all)")
    parser.add_argument("--metrics", nargs="+", choices=METRICS, help=f"default: {' '.join(DEFAULT_METRICS)}")
    parser.add_argument(
        "--keypoints",
        choices=KEYPOINTS,
        default="auto",
        help="AKD/MKR keypoints: synthetic ground truth when the videos have it (auto), else dlib68",
    )
    parser.add_argument(
        "--work-dir", type=output_folder, help="output folder (default work_dirs/<config>/test_<protocol>)"
    )
    parser.add_argument(
        "--save-videos", action="store_true", help="write the generated videos to the work dir"
    )
    add_device_argument(parser)
    parser.add_argument("--batch-size", type=positive_int, default=16, help="frames per network call")
    parser.add_argument(
        "--num-pairs", type=positive_int, help="transfer: number of pairs (default one per video)"
    )
    parser.add_argument("--seed", type=int, help="transfer: seed of the random pairs (default 0)")
    parser.add_argument(
        "--skip-source-frame",
        action="store_true",
        help="recon: leave frame 0 (the source) out of the metrics",
    )
    parser.add_argument(
        "--random-backbones",
        "--lpips-random",
        action="store_true",
        help="LPIPS/FID with randomly initialised backbones (smoke tests only, no weights needed)",
    )
    parser.add_argument(
        "--lpips-weights", help="torchvision AlexNet state_dict for LPIPS (default: hub cache)"
    )
    parser.add_argument(
        "--fid-network", choices=("inception_v3", "r3d_18"), help="FID features (default inception_v3)"
    )
    parser.add_argument("--fid-weights", help="weights file of the FID network (default: hub cache)")
    add_fast_path_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--jitter",
        action="store_true",
        help="also measure the jitter of the motion magnitudes and of the output on each video (with "
        "--smooth: smoothed too, and the lag it costs)",
    )
    add_smoothing_arguments(parser)
    args = parser.parse_args(argv)
    args.smoothing = smoothing_filter(parser, args)
    _check_unused_options(parser, args)
    args.seed = 0 if args.seed is None else args.seed
    args.fid_network = args.fid_network or "inception_v3"
    return args


def _options(names: list[str]) -> str:
    return f"{' and '.join(names)} {'applies' if len(names) == 1 else 'apply'}"


def _check_unused_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse options that the chosen protocol or metrics would ignore: the user meant something else."""
    if args.protocol == "transfer" and args.skip_source_frame:
        parser.error(
            "--skip-source-frame applies to --protocol recon only (in transfer the source image is "
            "not one of the driving frames)"
        )
    given = [
        name for name, value in (("--num-pairs", args.num_pairs), ("--seed", args.seed)) if value is not None
    ]
    if args.protocol == "recon" and given:
        parser.error(f"{_options(given)} to --protocol transfer only (add --protocol transfer)")
    refuse_inert_fast_path_options(parser, args)
    metrics = args.metrics or DEFAULT_METRICS
    for metric, options in (("fid", ("fid_network", "fid_weights")), ("lpips", ("lpips_weights",))):
        given = ["--" + option.replace("_", "-") for option in options if getattr(args, option) is not None]
        if given and metric not in metrics:
            parser.error(
                f"{_options(given)} to the {metric} metric, which does not run (add {metric} to --metrics)"
            )
        weights = f"--{metric}-weights"
        if args.random_backbones and weights in given:
            parser.error(
                f"{weights} and --random-backbones contradict each other: the first loads trained "
                "weights, the second keeps random ones (drop one of them)"
            )


# ----------------------------------------------------------------------------------------- inputs
def _dataset_cfg(cfg) -> dict:
    for key in ("test_dataloader", "val_dataloader", "train_dataloader"):
        loader = cfg.get(key)
        if loader and loader.get("dataset"):
            return dict(loader["dataset"])
    return {}


def _video_folder(args: argparse.Namespace, cfg) -> Path:
    from lmtk.datasets.synthetic import make_synthetic_dataset, synthetic_dataset_ready
    from lmtk.datasets.video_reader import split_folder

    dataset = _dataset_cfg(cfg)
    root = args.data_root or dataset.get("data_root") or cfg.get("data_root")
    if not root:
        raise ValueError("the config names no data root; pass --data-root DIR")
    root = Path(root)
    generate = dataset.get("generate")
    if args.data_root is None and generate:
        generate = {**dict(generate), "size": dict(generate).get("size", dataset.get("size", 64))}
        if not synthetic_dataset_ready(root, **generate):
            print(f"rendering the config's synthetic dataset into {root}", file=sys.stderr)
            make_synthetic_dataset(root, **{**generate, "progress": not args.quiet})
    return split_folder(root, args.split)


def _load_model(args: argparse.Namespace, cfg):
    from lmtk import load_model
    from lmtk.checkpoint import checkpoint_path, load_checkpoint_file, stores_config

    # a work dir means its newest checkpoint, which metrics.json then names
    args.checkpoint = checkpoint_path(args.checkpoint)
    checkpoint = load_checkpoint_file(args.checkpoint, trust=args.trust_checkpoint)
    # the architecture stored with (or inferred from) the checkpoint wins; the config only fills in for
    # an lmtk checkpoint that stores none
    configless = isinstance(checkpoint, dict) and "state_dict" in checkpoint and not stores_config(checkpoint)
    config = args.config if configless and cfg.get("model") is not None else None
    del checkpoint
    return load_model(args.checkpoint, config=config, device=args.device, trust=args.trust_checkpoint)


# ---------------------------------------------------------------------------------------- metrics
def _synthetic_videos(videos: list[Path]) -> bool:
    """Whether every video is one of lmtk's synthetic clips (ground-truth keypoints beside it)."""
    from lmtk.evaluation.extractors import synthetic_annotation_path

    return bool(videos) and all(synthetic_annotation_path(v).is_file() for v in videos)


def _keypoint_extractor(choice: str, annotated: bool):
    """``annotated``: every video has synthetic ground truth (:func:`_synthetic_videos`)."""
    from lmtk.registry import build

    if choice == "auto":
        choice = "synthetic" if annotated else "dlib68"
    if choice == "synthetic" and not annotated:
        raise FileNotFoundError(
            "--keypoints synthetic needs ground-truth annotations (<video>.json next to each video)"
        )
    return build(dict(type="lmtk.SyntheticKeypoints.v1" if choice == "synthetic" else "lmtk.Dlib68.v1"))


def _metric_config(name: str, args: argparse.Namespace, extractor) -> dict:
    pretrained = not args.random_backbones
    if name == "l1":
        return dict(type="lmtk.L1.v1")
    if name == "lpips":
        return dict(
            type="lmtk.LPIPS.v1", pretrained=pretrained, weights_path=args.lpips_weights, device=args.device
        )
    if name in ("akd", "mkr"):
        return dict(type=f"lmtk.{name.upper()}.v1", extractor=extractor())
    if name == "aed":
        return dict(type="lmtk.AED.v1", extractor=dict(type="lmtk.DlibFace.v1"))
    return dict(
        type="lmtk.VideoFID.v1",
        feature_network=args.fid_network,
        pretrained=pretrained,
        weights_path=args.fid_weights,
        device=args.device,
    )


def _unavailable_reason(name: str, error: Exception) -> str:
    """Why a metric cannot run, with the fix in this tool's options."""
    from lmtk.backbone_weights import MissingWeightsError

    if isinstance(error, MissingWeightsError):
        return (
            f"{error.network} weights not found at {error.path} (lmtk never downloads them): download "
            f"{error.url} there or pass --{name}-weights FILE; --random-backbones runs it with random "
            "weights, for smoke tests only"
        )
    return " ".join(str(error).split())


def build_metrics(args: argparse.Namespace, videos: list[Path]) -> tuple[list, dict[str, str], list[str]]:
    """The metrics that can run, the reasons of those that cannot, and every requested name in order.

    Raises:
        RuntimeError: a metric named with ``--metrics`` cannot run.
    """
    from lmtk.registry import build

    names = list(dict.fromkeys(args.metrics or DEFAULT_METRICS))
    synthetic = _synthetic_videos(videos)
    shared: dict[str, object] = {}

    def extractor():
        # AKD and MKR share one extractor, so each frame's keypoints are found once
        if "keypoints" not in shared:
            shared["keypoints"] = _keypoint_extractor(args.keypoints, synthetic)
        return shared["keypoints"]

    built, skipped = [], {}
    if not args.metrics and "aed" in names and synthetic:
        skipped["aed"] = (
            "dlib's face recognition finds lmtk's synthetic faces only now and then, so AED would rest on "
            "a few frames (name aed in --metrics to run it anyway)"
        )
    for name in (name for name in names if name not in skipped):
        try:
            built.append(build(_metric_config(name, args, extractor), "metrics"))
        except _UNAVAILABLE as error:
            reason = _unavailable_reason(name, error)
            if args.metrics:
                raise RuntimeError(f"metric {name} cannot run: {reason}") from error
            skipped[name] = reason
    return built, skipped, names


# -------------------------------------------------------------------------------------------- run
def run(args: argparse.Namespace):
    from lmtk.config_file import read_config
    from lmtk.datasets.video_reader import find_videos
    from lmtk.evaluation.protocols import evaluate_reconstruction, evaluate_transfer
    from lmtk.fast_paths import FastPaths, apply_fast_paths

    cfg = read_config(args.config)
    folder = _video_folder(args, cfg)
    videos = find_videos(folder)[: args.max_videos]
    if not videos:
        raise FileNotFoundError(f"no videos (video files or frame folders) in {folder}")
    metrics, skipped, names = build_metrics(args, videos)
    model = _load_model(args, cfg)
    work_dir = Path(args.work_dir or osp.join("work_dirs", Path(args.config).stem, f"test_{args.protocol}"))
    save_dir = work_dir / "videos" if args.save_videos else None
    with _removed_if_left_empty(save_dir or work_dir):  # a failed run leaves no empty work dir
        paths = FastPaths(**fast_path_overrides(args))
        if paths != FastPaths(dtype=paths.dtype):
            apply_fast_paths(model, paths)
        options = dict(
            batch_size=args.batch_size,
            max_frames=args.max_frames,
            save_dir=save_dir,
            progress=not args.quiet,
            dtype=paths.dtype,
        )
        if args.protocol == "recon":
            result = evaluate_reconstruction(
                model, videos, metrics, skip_source_frame=args.skip_source_frame, **options
            )
        else:
            result = evaluate_transfer(
                model, videos, metrics, num_pairs=args.num_pairs, seed=args.seed, **options
            )
        # the table shows the first sentence; metrics.json keeps the whole reason
        result.notes.update({name: "skipped: " + reason.split(". ")[0] for name, reason in skipped.items()})
        if args.random_backbones:
            # a value from random weights is flagged; a missing value keeps the reason it is missing
            for name in {"lpips", "fid"} & set(names) - set(skipped):
                if math.isfinite(result.summary.get(name, math.nan)):
                    caveat = result.notes.get(name)
                    random = "random weights (--random-backbones): a smoke test, not a score"
                    result.notes[name] = f"{random}; {caveat}" if caveat else random
        result.metric_names = names
        extra = {
            "config": str(args.config),
            "checkpoint": str(args.checkpoint),
            "data": str(folder),
            "model_size": model.size,
            "skipped": skipped,
        }
        if args.jitter:
            extra["jitter"] = _jitter(args, model, videos, paths.dtype)
        json_path, csv_path = result.write(work_dir, extra)
        return result, json_path, csv_path


@contextlib.contextmanager
def _removed_if_left_empty(folder: Path) -> Iterator[None]:
    """Make ``folder`` (and its missing parents) for the block; if the block fails, the folders it made
    that are still empty are removed again."""
    from lmtk.cli import missing_folders

    made = missing_folders(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in made:
            with contextlib.suppress(OSError):  # not empty: it holds finished work
                path.rmdir()
        raise


def _jitter(args: argparse.Namespace, model, videos: list[Path], dtype: str) -> dict:
    """Per video and on average: the jitter of the magnitudes and outputs (lmtk.evaluation.jitter)."""
    from lmtk.apis import Animator
    from lmtk.evaluation.jitter import video_jitter

    animator = Animator(model, device=args.device, dtype=dtype, batch_size=args.batch_size)
    per_video = {str(v): video_jitter(animator, v, args.smoothing, args.max_frames) for v in videos}
    names = [k for k, v in next(iter(per_video.values())).items() if isinstance(v, int | float)]
    mean = {k: float(sum(r[k] for r in per_video.values()) / len(per_video)) for k in names}
    print("jitter (mean over videos): " + ", ".join(f"{k} {v:.4g}" for k, v in mean.items() if k != "frames"))
    return {"mean": mean, "per_video": per_video}


def main(argv: list[str] | None = None) -> int:
    from lmtk.checkpoint import CheckpointError
    from lmtk.registry import RegistryError

    args = parse_args(argv)
    try:
        with (
            torch.no_grad(),
            sigterm_as_interrupt(),
        ):  # scoped: main() is also called in-process (tests, scripts)
            result, json_path, csv_path = run(args)
    except (OSError, ValueError, TypeError, RuntimeError, RegistryError, CheckpointError) as error:
        print_error(error)
        return 1
    except KeyboardInterrupt as error:
        print(f"error: {interrupted_word(error)}", file=sys.stderr)
        return interrupted_exit_code(error)
    pairs = result.protocol == "transfer"
    unit = "pairs" if pairs else "videos"  # transfer rows are pairs, not videos
    if result.unreadable:  # left out, as training skips them: the other videos' results are kept
        total = len(result.per_video) + len(result.unreadable)
        print(
            f"warning: left out {len(result.unreadable)} of {total} {unit}{' with a video' if pairs else ''} "
            f"that cannot be read (metrics.json lists them under unreadable); first: "
            f"{result.unreadable[0]['reason']}",
            file=sys.stderr,
        )
    print(f"protocol: {result.protocol}, {unit}: {len(result.per_video)}")
    print(result.format_table())
    print(f"wrote {json_path} and {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
