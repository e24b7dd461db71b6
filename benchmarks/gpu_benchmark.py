"""One GPU session's measurements: animation, the reference demo loop, training, numerics, host syncs.

Run through ``benchmarks/gpu_benchmark.sh`` on a machine with a GPU (it installs what is missing from carried
wheels); every step checks a time budget, and the report is rewritten after each step, so a run cut short
still leaves everything measured so far. A CPU run at a tiny size checks the script itself::

    python benchmarks/gpu_benchmark.py --device cpu --tiny --out /tmp/gpu_benchmark

On the GPU the model is the paper's (256 px, latent 512, M = 20, StyleGAN2 discriminator, L1 + VGG19
pyramid + adversarial losses; random VGG19 weights, same cost). With the conformance fixture (the
published checkpoint format with deterministic random weights), the numerics are compared on those
weights and on the fixture's real images, with TF32 off for every float32 reference.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

import torch  # noqa: E402

import lmtk  # noqa: E402
from benchmarks.speed import (  # noqa: E402
    benchmark_animation,
    benchmark_reference,
    benchmark_training,
    environment,
    exact_float32,
    format_table,
    format_top_operations,
    host_sync_sites,
    transfer_under,
)
from lmtk.apis.numerics import relative_error, synthetic_images  # noqa: E402
from lmtk.cli import ArgumentParser, available_device, positive_int  # noqa: E402
from lmtk.fast_paths import FastPaths, apply_fast_paths  # noqa: E402
from lmtk.registry import build  # noqa: E402

PAPER = dict(size=256, latent_dim=512, channel_base=16384, max_channels=512, num_directions=20)
TINY = dict(size=32, latent_dim=32, channel_base=256, max_channels=32, num_directions=5)


def model_config(shape: dict, perceptual: bool) -> dict:
    return dict(
        type="lmtk.LIA.v1",
        size=shape["size"],
        latent_dim=shape["latent_dim"],
        channel_base=shape["channel_base"],
        max_channels=shape["max_channels"],
        encoder=dict(type="lmtk.LIAEncoder.v1"),
        generator=dict(type="lmtk.FlowGenerator.v1"),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", num_directions=shape["num_directions"]),
        discriminator=dict(type="lmtk.StyleGAN2Discriminator.v1"),
        loss=dict(
            type="lmtk.LIALoss.v1",
            perceptual_weight=10.0 if perceptual else 0.0,
            perceptual=dict(pretrained=False),
        ),
    )


def conformance_model(folder: Path, cfg: dict) -> torch.nn.Module | None:
    """The paper model with the conformance fixture's weights (the rule of its README), or None."""
    keys_file = folder / "official_keys.json"
    if not keys_file.is_file():
        return None
    keys = json.loads(keys_file.read_text())
    buffers = torch.load(folder / "official_buffers.pt")
    published = {}
    for network, name in (("generator", "gen"), ("discriminator", "dis")):
        state = {}
        for entry in keys[network]:
            key = entry["key"]
            if entry["kind"] == "buffer":
                state[key] = buffers[network][key]
                continue
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
            state[key] = torch.randn(entry["shape"], generator=g) * (0.05 if key.endswith("bias") else 1.0)
        published[name] = state
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conformance.pt"
        torch.save(published, path)
        model = lmtk.load_model(path)
    model.loss = build(cfg["loss"], "loss_sets")
    return model


class Session:
    """Runs steps under a time budget and keeps the report on disk after each one."""

    def __init__(self, out: Path, budget: float, device: torch.device) -> None:
        self.out, self.budget, self.start = out, budget, time.perf_counter()
        self.report = {"environment": environment(device), "results": [], "numerics": {}, "errors": []}
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)

    def step(self, name: str, fn, needs: float = 0.0):
        if self.left() < needs:
            print(f"[skip] {name}: {self.left():.0f} s left, needs about {needs:.0f}", flush=True)
            self.report["errors"].append(f"skipped {name}: out of time")
            return None
        began = time.perf_counter()
        try:
            result = fn()
        except Exception as error:  # noqa: BLE001 - one failed step must not lose the others
            traceback.print_exc()
            self.report["errors"].append(f"{name}: {type(error).__name__}: {error}")
            result = None
        print(
            f"[{time.perf_counter() - self.start:6.1f} s] {name} ({time.perf_counter() - began:.1f} s)",
            flush=True,
        )
        self.save()
        return result

    def record(self, record: dict | None) -> dict | None:
        if record is not None:
            self.report["results"].append(record)
            print(f"    {record['name']}: {record['throughput']:.1f} {record['unit']}", flush=True)
            if record.get("top_operations"):
                print(format_top_operations(record), flush=True)
        return record

    def save(self) -> None:
        (self.out / "gpu_benchmark.json").write_text(json.dumps(self.report, indent=2, default=str))


def numerics(session: Session, model, source, driving, official, compiled: bool) -> None:
    results = session.report["numerics"]
    with exact_float32():
        reference = transfer_under(model, FastPaths(), source, driving)
        if official is not None:
            results["fp32_vs_published_outputs"] = relative_error(reference, official)
        if not compiled:
            variants = {
                "fp32_channels_last": FastPaths(channels_last=True),
                "fp32_blur_folded": FastPaths(blur="folded"),
                "fp32_blur_separable": FastPaths(blur="separable"),
                "bf16": FastPaths(dtype="bfloat16"),
                "bf16_channels_last": FastPaths(dtype="bfloat16", channels_last=True),
                "bf16_channels_last_blur_folded": FastPaths(
                    dtype="bfloat16", channels_last=True, blur="folded"
                ),
                "bf16_channels_last_blur_separable": FastPaths(
                    dtype="bfloat16", channels_last=True, blur="separable"
                ),
            }
        else:
            variants = {
                "fp32_compiled": FastPaths(compile="default"),
                "fp32_compiled_blur_separable": FastPaths(compile="default", blur="separable"),
            }
        for name, paths in variants.items():
            results[f"{name}_vs_fp32"] = relative_error(
                transfer_under(model, paths, source, driving), reference
            )
    for key, value in results.items():
        print(f"    {key}: {value:.3g}", flush=True)


def main(argv=None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_benchmark_out"))
    parser.add_argument("--device", type=available_device, default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny model (to check the script on a CPU)")
    parser.add_argument("--conformance", default=None, help="folder with the conformance fixture files")
    parser.add_argument(
        "--data",
        default=None,
        help="a dataset root of 256 px clips (tools/prepare_dataset.py): time the vox config's data loader",
    )
    parser.add_argument("--anim-batch", type=positive_int, default=64)
    parser.add_argument("--train-batch", type=positive_int, default=32)
    parser.add_argument("--frames", type=positive_int, default=256, help="driving frames per timed iteration")
    parser.add_argument("--iters", type=positive_int, default=3)
    parser.add_argument("--train-iters", type=positive_int, default=3)
    parser.add_argument("--reference-frames", type=positive_int, default=32)
    parser.add_argument("--budget", type=float, default=330.0, help="seconds; later steps are skipped")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument(
        "--profile", type=int, default=12, help="keep each measurement's N most expensive kernels (0: off)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="animation: float32, the fastest eager variant, and compiled + frozen with its blur and "
        "with the separable one; training: compiled only, with the blur of the fastest compiled animation",
    )
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN time its algorithms once
    session = Session(Path(args.out), args.budget, device)
    env = session.report["environment"]
    print(
        f"{env['device_name']} | torch {env['torch']} | CUDA {env['cuda']} | cuDNN {env['cudnn']}", flush=True
    )
    shape = TINY if args.tiny else PAPER
    cfg = model_config(shape, perceptual=not args.tiny)
    session.report["settings"] = {**vars(args), "shape": shape}

    model, official, source, driving = None, None, None, None
    if not args.tiny and args.conformance:
        model = session.step(
            "load conformance weights", lambda: conformance_model(Path(args.conformance), cfg)
        )
        outputs = Path(args.conformance) / "official_outputs.pt"
        if model is not None and outputs.is_file():
            data = torch.load(outputs)
            source, driving, official = (data[k].to(device) for k in ("source", "driving", "out_absolute"))
    if model is None:
        torch.manual_seed(0)
        model = build(cfg, "models")
        session.report["weights"] = "random initialisation"
    else:
        session.report["weights"] = "conformance fixture"
    model = model.to(device).eval()
    if source is None:
        source = synthetic_images(2, shape["size"], device, seed=10)
        driving = synthetic_images(2, shape["size"], device, seed=11)
    # motion of a different frame for each source, as in the fixture
    session.step("numerics", lambda: numerics(session, model, source, driving, official, compiled=False))

    anim = dict(
        batch_size=args.anim_batch, frames=args.frames, iters=args.iters, warmup=1, profile_top=args.profile
    )
    variants = [
        FastPaths(),
        FastPaths(dtype="bfloat16", channels_last=True),
        FastPaths(dtype="bfloat16", channels_last=True, blur="folded"),
        FastPaths(dtype="bfloat16", channels_last=True, blur="separable"),  # for compiled graphs
    ]
    if args.quick:
        variants = variants[:1] + variants[2:3]
    for paths in variants:
        session.step(
            f"animate {paths.describe()}",
            lambda paths=paths: session.record(benchmark_animation(model, device, paths, **anim)),
            needs=20,
        )
    reference = session.step(
        "reference demo loop",
        lambda: session.record(benchmark_reference(model, device, frames=args.reference_frames)),
        needs=10,
    )
    animations = [r for r in session.report["results"] if r["unit"] == "frames/s" and not r.get("reference")]
    best = max(animations, key=lambda r: r["throughput"], default=None)
    best_paths = FastPaths(**{k: best[k] for k in FastPaths.__dataclass_fields__}) if best else variants[2]

    def syncs():
        from lmtk.apis import Animator

        restore = apply_fast_paths(model, best_paths)
        try:
            animator = Animator(model, device=device, dtype=best_paths.dtype, batch_size=args.anim_batch)
            encoded = animator.encode_source(
                synthetic_images(1, shape["size"], device, best_paths.channels_last)
            )
            frames = synthetic_images(args.anim_batch, shape["size"], device, best_paths.channels_last)
            animator.animate_frames(encoded, frames, mode="absolute")
            sites = host_sync_sites(lambda: animator.animate_frames(encoded, frames, mode="absolute"), device)
            session.report["host_syncs_per_animate_call"] = None if sites is None else len(sites)
            session.report["host_sync_sites"] = sites
            print(f"    host syncs in one animate call: {sites}")
        finally:
            restore()

    session.step("host syncs", syncs, needs=10)

    state = {k: v.clone() for k, v in model.state_dict().items()}
    train = dict(batch_size=args.train_batch, iters=args.train_iters, warmup=1, profile_top=args.profile)
    fast_training = FastPaths(dtype="bfloat16", channels_last=True, blur="folded")  # the fastest eager blur
    train_variants = (
        (FastPaths(), 30),
        (FastPaths(dtype="bfloat16", channels_last=True), 30),
        (fast_training, 30),
    )
    for paths, needs in () if args.quick else train_variants:  # eager training: measured in earlier runs
        session.step(
            f"train {paths.describe()}",
            lambda paths=paths: session.record(benchmark_training(model, device, paths, **train)),
            needs=needs,
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()
        torch._dynamo.reset()
    model.load_state_dict(state)
    model.eval()

    if not args.no_compile:
        # the blur folded (4x the encoder's convolution work) against the blur as multiply-adds that
        # inductor fuses (lmtk.layers.resample)
        bf16 = FastPaths(dtype="bfloat16", channels_last=True, compile="default")
        compiled_variants = [
            replace(best_paths, compile="default"),
            replace(best_paths, compile="default", freeze=True),
            replace(bf16, blur="separable", freeze=True),
        ]
        if args.quick:
            compiled_variants = compiled_variants[1:]  # freezing was the faster in every earlier run
        for paths in compiled_variants:
            session.step(
                f"animate {paths.describe()}",
                lambda paths=paths: session.record(benchmark_animation(model, device, paths, **anim)),
                needs=90,
            )
            torch._dynamo.reset()
        session.step(
            "numerics compiled fp32",
            lambda: numerics(session, model, source, driving, None, compiled=True),
            needs=90,
        )
        torch._dynamo.reset()
        compiled_runs = [r for r in session.report["results"] if r.get("compile") and r["unit"] == "frames/s"]
        fastest = max(compiled_runs, key=lambda r: r["throughput"], default=None)
        compiled_training = replace(
            fast_training, compile="default", blur=fastest["blur"] if fastest else fast_training.blur
        )
    if args.data:
        session.step(
            "data loading", lambda: data_loading(session, Path(args.data), device, args.train_batch), needs=40
        )

    if not args.no_compile:
        session.step(  # last: compiling the forward and backward graphs of the whole step takes minutes
            f"train {compiled_training.describe()}",
            lambda: session.record(benchmark_training(model, device, compiled_training, **train)),
            needs=240,
        )
        model.load_state_dict(state)

    reference = next((r for r in session.report["results"] if r.get("reference")), None)
    print(format_table(session.report["results"], reference))
    for key, value in session.report["numerics"].items():
        print(f"numerics {key}: {value:.3g}")
    for error in session.report["errors"]:
        print(f"error: {error}")
    session.save()


def data_loading(session: Session, root: Path, device: torch.device, batch_size: int) -> None:
    """Images/s of the vox config's training loader on ``root``, with the config's 8 workers and with
    one per core but one (at most 16). Every sample opens its clip (no reader cache), as on a dataset of thousands
    of clips, where the cache rarely hits."""
    from benchmarks.data_loading import benchmark_data_loading
    from lmtk.config_file import read_config

    cfg = read_config(Path(__file__).resolve().parents[1] / "configs/lia/lia_vox_m20.py").train_dataloader
    loader = cfg.to_dict()
    loader["dataset"].update(data_root=str(root), reader_cache_size=0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    for workers in sorted({8, min(16, max(1, cores - 1))}):  # capped: a sandbox may report the host's cores
        session.record(benchmark_data_loading(loader, device, 30, num_workers=workers, batch_size=batch_size))


if __name__ == "__main__":
    main()
