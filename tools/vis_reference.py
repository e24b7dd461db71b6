"""Show the reference image x_r of each source image (paper Fig. 5): sources on top, references below.

    python tools/vis_reference.py --checkpoint CKPT --images DIR_OR_FILES... --output OUT.png
        [--max-images N] [--resize resize|crop] [--device cpu]

``x_r = G(z_{s->r})`` decodes the source's code without any motion (appendix B.4). A trained model maps
every source of a dataset to one canonical pose, so the bottom row should look alike in pose and scale.
The output is a PNG of two rows and one column per image, tiles of the model size.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lmtk.cli import (  # noqa: E402
    ArgumentParser,
    add_model_arguments,
    positive_int,
    print_error,
)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--images",
        required=True,
        nargs="+",
        help="image files and/or folders of images (a video gives its first frame)",
    )
    parser.add_argument("--output", required=True, help="output PNG")
    parser.add_argument("--max-images", type=positive_int, help="use the first N images")
    parser.add_argument(
        "--resize", choices=("resize", "crop"), default="resize", help="how images are fitted"
    )
    args = parser.parse_args(argv)
    # checked before the model loads: Pillow would only fail at the end, with "unknown file extension"
    output = Path(args.output)
    if output.is_dir():
        parser.error(f"--output {output} is a folder; give a file name such as {output / 'reference.png'}")
    from PIL import Image

    if Image.registered_extensions().get(output.suffix.lower()) not in Image.SAVE:
        parser.error(
            f"--output {output}: Pillow cannot write a {output.suffix or 'suffix-less'} file; use .png"
        )
    return args


def list_images(items: list[str]) -> list[Path]:
    """Image files named directly, then those of each folder (sorted by name).

    Videos count as images (their first frame), in folders too: a dataset split is a folder of clips.
    """
    from lmtk.datasets.video_reader import VIDEO_EXTENSIONS

    sources = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            paths.extend(sorted(p for p in item.iterdir() if p.suffix.lower() in sources))
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"image or folder not found: {item}")
    if not paths:
        raise FileNotFoundError(f"no images or videos ({', '.join(sources)}) in {' '.join(items)}")
    return paths


@torch.inference_mode()
def reference_images(model, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """``x_r`` ``(N, 3, S, S)`` of sources ``(N, 3, S, S)`` in [-1, 1]."""
    return torch.cat([model.reference(batch) for batch in images.split(batch_size)])


def run(args: argparse.Namespace) -> Path:
    from PIL import Image

    from lmtk import load_model
    from lmtk.apis import fit_image, load_image
    from lmtk.functional import float_to_uint8, uint8_to_float

    paths = list_images(args.images)[: args.max_images]
    model = load_model(args.checkpoint, config=args.config, device=args.device, trust=args.trust_checkpoint)
    size = model.size
    sources = np.stack([fit_image(load_image(p), size, args.resize) for p in paths])
    tensor = uint8_to_float(torch.from_numpy(sources).permute(0, 3, 1, 2)).to(args.device)
    references = float_to_uint8(reference_images(model, tensor)).permute(0, 2, 3, 1).cpu().numpy()
    grid = np.concatenate([np.concatenate(list(sources), axis=1), np.concatenate(list(references), axis=1)])
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(output)
    return output


def main(argv: list[str] | None = None) -> int:
    from lmtk.checkpoint import CheckpointError

    args = parse_args(argv)
    try:
        output = run(args)
    except (OSError, ValueError, CheckpointError) as error:  # OSError: an output that cannot be written
        print_error(error)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
