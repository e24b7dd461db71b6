"""benchmarks.speed in-process (the tool is tested end to end in tests/tools/test_benchmark_tool.py)."""

import json
from pathlib import Path

import pytest

from benchmarks.speed import load_benchmark_model
from lmtk.config_file import read_config

QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "lia" / "lia_synthetic_m20.py"


@pytest.mark.parametrize("suffix", [".py", ".json"])
def test_any_config_format_gives_its_fast_paths_and_options(tmp_path, suffix):
    model_cfg = read_config(QUICKSTART).model.to_dict()
    model_cfg.update(size=32, latent_dim=32, channel_base=256, max_channels=16)
    config = tmp_path / f"tiny{suffix}"
    if suffix == ".py":
        config.write_text(f"model = {model_cfg!r}\nfast_paths = dict(channels_last=True)\n")
    else:
        config.write_text(json.dumps({"model": model_cfg, "fast_paths": {"channels_last": True}}))
    # a JSON config used to be read as a checkpoint's config: its fast_paths and --cfg-options were lost
    model, fast_paths, _ = load_benchmark_model(config, cfg_options={"model.motion_basis.num_directions": 3})
    assert fast_paths == {"channels_last": True}
    assert model.size == 32 and tuple(model.directions().shape) == (32, 3)
    assert model.loss is None and model.discriminator is None  # inference only
