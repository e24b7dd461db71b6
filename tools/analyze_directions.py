"""Correlate each learned direction's magnitude with the known motion factors of synthetic clips.

    python tools/analyze_directions.py --checkpoint CKPT --data-root SYNTH_ROOT [--split test]
        --output-dir DIR [--centre-per-video] [--max-videos N] [--max-frames N] [--device cpu]

For every frame of lmtk's synthetic clips (``tools/make_synthetic_dataset.py``), the motion magnitudes
``A_{r->t}`` are compared with the ground-truth factors (``tx``, ``ty``, ``rotation``, ``scale``, ``nod``,
``turn``, ``blink``, ``gaze_x``, ``gaze_y``, ``mouth_open``) by Pearson correlation over all frames
(``--centre-per-video`` removes each clip's mean first, so only motion within a clip counts).

Writes ``correlation.png`` (heatmap), ``correlation.md`` and ``correlation.csv`` (directions x factors,
with the best match) into the output folder and prints the best-matching factor of each direction;
``direction_names.json`` names each direction that follows one factor clearly (``|r| >= 0.5``), ready
for a config's ``direction_names`` (docs/liax.md).
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

import numpy as np  # noqa: E402

from lmtk.cli import (  # noqa: E402
    ArgumentParser,
    add_model_arguments,
    output_folder,
    positive_int,
    print_error,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--data-root", required=True, help="synthetic dataset folder")
    parser.add_argument("--split", default="test", help="sub-folder of the data root (default test)")
    parser.add_argument(
        "--output-dir", type=output_folder, required=True, help="where the heatmap and tables go"
    )
    parser.add_argument("--centre-per-video", action="store_true", help="correlate within-clip motion only")
    parser.add_argument("--max-videos", type=positive_int, help="use the first N clips")
    parser.add_argument("--max-frames", type=positive_int, help="frames per clip (default all)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="frames per network call")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> tuple[np.ndarray, list[str], Path]:
    from lmtk import load_model
    from lmtk.datasets.video_reader import find_videos, split_folder
    from lmtk.evaluation.direction_analysis import (
        collect_magnitudes,
        correlation_markdown,
        correlation_matrix,
        plot_correlation_heatmap,
        require_directions,
        write_correlation_csv,
    )

    folder = split_folder(args.data_root, args.split)
    videos = find_videos(folder)[: args.max_videos]
    if not videos:
        raise FileNotFoundError(f"no videos in {folder}")
    model = load_model(args.checkpoint, config=args.config, device=args.device, trust=args.trust_checkpoint)
    require_directions(model)
    data = collect_magnitudes(model, videos, batch_size=args.batch_size, max_frames=args.max_frames)
    groups = data.video_index if args.centre_per_video else None
    correlation = correlation_matrix(data.magnitudes, data.factors, groups)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    centring = "per-video centred" if args.centre_per_video else "over all frames"
    title = f"Pearson r, {len(data.magnitudes)} frames of {len(videos)} clips, {centring}"
    plot_correlation_heatmap(correlation, data.factor_names, output / "correlation.png", title)
    (output / "correlation.md").write_text(
        f"{title}\n\n" + correlation_markdown(correlation, data.factor_names)
    )
    write_correlation_csv(correlation, data.factor_names, output / "correlation.csv")
    return correlation, data.factor_names, output


def main(argv: list[str] | None = None) -> int:
    from lmtk.checkpoint import CheckpointError
    from lmtk.evaluation.direction_analysis import best_matching_factors, suggested_direction_names

    args = parse_args(argv)
    try:
        correlation, names, output = run(args)
    except (OSError, ValueError, CheckpointError) as error:  # OSError: an output that cannot be written
        print_error(error)
        return 1
    for index, name, r in best_matching_factors(correlation, names):
        print(f"d{index}: {name} (r = {r:+.2f})" if np.isfinite(r) else f"d{index}: constant, no correlation")
    suggested = suggested_direction_names(correlation, names)
    (output / "direction_names.json").write_text(json.dumps(suggested, indent=2) + "\n")
    print(f"wrote correlation.png, correlation.md, correlation.csv and direction_names.json to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
