"""Train the paper's ablations on synthetic faces with one seed and budget, and print one table.

    python tools/synthetic_ablations.py [--iters 1500] [--work-dir work_dirs/ablations] [--configs ...]

Each config is trained by ``tools/train.py`` in its own process, then evaluated by same-identity
reconstruction on the held-out synthetic test videos (first frame as source, every frame as driving,
absolute transfer). The table reports the L1 (on [0, 1] images) of each model and of the trivial
answer "repeat the source frame", so Tables 4 and 5 of the paper can be seen on a laptop.
"""

from __future__ import annotations

import json
import os.path as osp
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

DEFAULT_CONFIGS = [
    "configs/lia/lia_synthetic_m20.py",
    "configs/lia/lia_synthetic_no_dm.py",
    "configs/lia/lia_synthetic_m5.py",
    "configs/lia/lia_synthetic_m10.py",
    "configs/lia/lia_synthetic_m40.py",
]


def evaluate(checkpoint: str, data_root: str, split: str = "test") -> dict:
    import numpy as np

    import lmtk
    from lmtk.datasets.video_reader import find_videos
    from lmtk.evaluation.reconstruction import reconstruct_video

    model = lmtk.load_model(checkpoint)
    videos = find_videos(Path(data_root) / split)
    if not videos:
        raise FileNotFoundError(f"no {split} videos under {data_root}")
    results = [reconstruct_video(model, video)[0] for video in videos]
    l1 = float(np.mean([r["l1"] for r in results]))
    baseline = float(np.mean([r["l1_repeat_source"] for r in results]))
    return {"l1": l1, "l1_repeat_source": baseline, "ratio": l1 / baseline, "videos": len(videos)}


def main(argv=None) -> int:
    from lmtk.cli import ArgumentParser, positive_int

    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument(
        "--iters", type=positive_int, default=1500, help="training iterations for every config"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default="work_dirs/ablations")
    parser.add_argument(
        "--data-root", default="data/synthetic_64", help="synthetic dataset (made if missing)"
    )
    args = parser.parse_args(argv)
    rows = []
    for config in args.configs:
        if not osp.isfile(config):
            print(f"error: config not found: {config}", file=sys.stderr)
            return 1
        name = osp.splitext(osp.basename(config))[0]
        work_dir = osp.join(args.work_dir, name)
        command = [sys.executable, osp.join(osp.dirname(osp.abspath(__file__)), "train.py"), config]
        command += ["--work-dir", work_dir, "--overwrite"]  # one table from one budget: train each afresh
        command += ["--cfg-options", f"train_cfg.max_iters={args.iters}"]
        command += [f"randomness.seed={args.seed}", f"train_dataloader.dataset.data_root={args.data_root}"]
        start = time.time()
        print(f"training {name} for {args.iters} iterations ...", flush=True)
        trained = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if trained.returncode:
            last = (trained.stderr.strip().splitlines() or ["(no output)"])[-1]
            print(f"error: training {name} failed (exit {trained.returncode}): {last}", file=sys.stderr)
            return 1
        minutes = (time.time() - start) / 60
        checkpoint = Path(work_dir, "last_checkpoint").read_text().strip()
        rows.append({"config": name, "minutes": minutes, **evaluate(checkpoint, args.data_root)})
    print("\n| config | recon L1 | repeat-source L1 | ratio | train minutes |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['config']} | {row['l1']:.4f} | {row['l1_repeat_source']:.4f} | {row['ratio']:.3f} | "
            f"{row['minutes']:.1f} |"
        )
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    Path(args.work_dir, "ablations.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
