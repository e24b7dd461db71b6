"""Show what each learned motion direction does (paper Fig. 6): a grid and one animation per direction.

    python tools/vis_directions.py --checkpoint CKPT --image IMG [--directions 0-19] [--range -3 3]
        [--steps 9] [--output-dir DIR] [--format mp4|gif] [--device cpu]
    python tools/vis_directions.py --checkpoint lia-x.pt --image IMG --directions yaw1 pitch eyes

The source keeps its own pose and moves along one direction: ``z = z_{s->r} + D(A_{r->s} + alpha * e_i)``,
which is ``z_{s->r} + w_{r->s} + alpha * d_i`` for a linear basis and what ``model.edit(image, {i: alpha})``
computes (``w_{r->s}`` is the source's own motion, so ``alpha = 0`` reconstructs the source; starting from
``z_{s->r}`` alone would show the moves around the reference pose instead). Directions are unit vectors,
so ``alpha`` is in the units of the motion magnitudes; ``directions.json`` records the source's own
magnitudes ``A_{r->s}`` as a guide to a useful range.

Writes into the output folder: ``directions.png`` (one row per direction, one column per alpha, tiles of
the model size), ``direction_<i>.mp4`` (or ``.gif``: alpha swept from low to high and back) and
``directions.json``; prints the basis's orthogonality error ``||D^T D - I||_F``. A model without a motion
basis (the "w/o D_m" ablation, ``lmtk.DirectPath.v1``) has no directions and is refused.
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lmtk.cli import (  # noqa: E402
    ArgumentParser,
    add_model_arguments,
    finite_float,
    output_folder,
    positive_float,
    print_error,
)


def parse_directions(
    text: str | list[str] | None, count: int, names: dict[str, int] | None = None
) -> list[int]:
    """``"0-4"``, ``"0,3,7"``, ``"2"``, direction names (``["yaw1", "pitch"]``, see ``model.direction_names``)
    or None (all) as direction indices, checked against ``count``."""
    tokens = [text] if isinstance(text, str) else list(text or [])
    if not tokens or tokens == ["all"]:
        return list(range(count))
    names = names or {}
    indices: list[int] = []
    for part in ",".join(tokens).split(","):
        part = part.strip()
        if part in names:
            indices.append(names[part])
            continue
        try:
            low, high = (int(v) for v in part.split("-", 1)) if "-" in part else (int(part),) * 2
        except ValueError:
            named = f" or the model's direction names ({', '.join(names)})" if names else ""
            raise ValueError(f"--directions must look like 0-19 or 0,3,5{named}, got {part!r}") from None
        if high < low:  # range() would give nothing, reported as "out of range"
            raise ValueError(f"--directions range {part} is empty; write it low to high: {high}-{low}")
        indices.extend(range(low, high + 1))
    bad = [i for i in indices if not 0 <= i < count]
    if bad or not indices:
        raise ValueError(f"directions {bad or text} out of range: the model has {count} (0-{count - 1})")
    return list(dict.fromkeys(indices))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--image", required=True, help="the source image")
    parser.add_argument(
        "--directions",
        nargs="+",
        help="which directions: 0-19, 0,3,5, names the model gives them (yaw1 pitch) or all (default all)",
    )
    parser.add_argument(
        "--range", nargs=2, type=finite_float, default=(-3.0, 3.0), metavar=("LOW", "HIGH"),
        help="the alphas swept, in motion-magnitude units (default -3 3)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=9, help="alphas per direction (grid columns, default 9)")
    parser.add_argument(
        "--output-dir", type=output_folder, help="default work_dirs/vis_directions/<image name>"
    )
    parser.add_argument("--format", choices=("mp4", "gif"), help="animation format (default mp4)")
    parser.add_argument("--fps", type=positive_float, help="animation frame rate (default 12)")
    parser.add_argument("--no-animations", action="store_true", help="only the grid")
    parser.add_argument(
        "--resize", choices=("resize", "crop"), default="resize", help="how the image is fitted"
    )
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error(f"--steps must be at least 2, got {args.steps}")
    if args.range[0] == args.range[1]:
        parser.error(f"--range {args.range[0]:g} {args.range[1]:g} sweeps nothing: give two different ends")
    if args.no_animations:
        given = [name for name in ("--format", "--fps") if getattr(args, name[2:]) is not None]
        if given:
            verb = "acts" if len(given) == 1 else "act"
            parser.error(
                f"{' and '.join(given)} only {verb} on the animations, which --no-animations leaves out"
            )
    args.format = args.format or "mp4"
    args.fps = args.fps or 12.0
    return args


@torch.inference_mode()
def direction_sweeps(model, image: torch.Tensor, directions: list[int], alphas: torch.Tensor) -> torch.Tensor:
    """Frames ``(len(directions), len(alphas), 3, S, S)`` of ``z_{s->r} + D(A_{r->s} + alpha * e_i)``."""
    net = model.net
    source = net.encode_source(image)
    rows = []
    for index in directions:
        offsets = source.magnitudes.new_zeros(len(alphas), source.magnitudes.shape[1])
        offsets[:, index] = alphas.to(offsets)
        # eq. 11 with the source's own motion, moved along direction i
        rows.append(net.animate(source, net.path(source.magnitudes + offsets)))
    return torch.stack(rows)


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    from lmtk.functional import float_to_uint8

    frames = float_to_uint8(frames)
    return frames.permute(*range(frames.dim() - 3), -2, -1, -3).cpu().numpy()


def _write_animation(frames: np.ndarray, path: Path, fps: float) -> None:
    sweep = np.concatenate([frames, frames[-2:0:-1]])  # low -> high -> low, loops without a jump
    if path.suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in sweep]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
        return
    from lmtk.apis import VideoWriter

    with VideoWriter(path, fps) as writer:
        for frame in sweep:
            writer.write(frame)


def run(args: argparse.Namespace) -> dict:
    from PIL import Image

    from lmtk import load_model
    from lmtk.apis import fit_image, load_image
    from lmtk.checkpoint import checkpoint_path
    from lmtk.evaluation.direction_analysis import orthogonality_error, require_directions
    from lmtk.functional import uint8_to_float

    image = load_image(args.image)
    model = load_model(args.checkpoint, config=args.config, device=args.device, trust=args.trust_checkpoint)
    basis = require_directions(model)
    names = getattr(model, "direction_names", {})
    indices = parse_directions(args.directions, basis.shape[1], names)
    size = model.size
    tensor = uint8_to_float(torch.from_numpy(fit_image(image, size, args.resize)).permute(2, 0, 1)[None])
    tensor = tensor.to(args.device)
    alphas = torch.linspace(args.range[0], args.range[1], args.steps)
    frames = _to_uint8(direction_sweeps(model, tensor, indices, alphas))  # (D, steps, S, S, 3)
    output = Path(args.output_dir or Path("work_dirs") / "vis_directions" / Path(args.image).stem)
    output.mkdir(parents=True, exist_ok=True)
    grid = frames.transpose(0, 2, 1, 3, 4).reshape(len(indices) * size, args.steps * size, 3)
    Image.fromarray(grid).save(output / "directions.png")
    if not args.no_animations:
        for index, row in zip(indices, frames):
            _write_animation(row, output / f"direction_{index}.{args.format}", args.fps)
    with torch.inference_mode():
        own = model.net.magnitudes(model.net.encode_code(tensor))[0].float().cpu().tolist()
    error = orthogonality_error(basis)
    info = {
        "checkpoint": str(checkpoint_path(args.checkpoint)),
        "image": str(args.image),
        "model_size": size,
        "num_directions": int(basis.shape[1]),
        "directions": indices,
        "direction_names": {str(i): n for n, i in names.items() if i in indices},
        "alphas": alphas.tolist(),
        "orthogonality_error": error,
        "source_magnitudes": own,
        "latent": "z_sr + D(A_rs + alpha * e_i)",
    }
    (output / "directions.json").write_text(json.dumps(info, indent=2) + "\n")
    info["output_dir"] = str(output)
    return info


def main(argv: list[str] | None = None) -> int:
    from lmtk.checkpoint import CheckpointError

    args = parse_args(argv)
    try:
        info = run(args)
    except (OSError, ValueError, CheckpointError) as error:  # OSError: an output that cannot be written
        print_error(error)
        return 1
    print(f"orthogonality error ||D^T D - I||_F = {info['orthogonality_error']:.3e}")
    print(
        f"{len(info['directions'])} directions x {len(info['alphas'])} steps written to {info['output_dir']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
