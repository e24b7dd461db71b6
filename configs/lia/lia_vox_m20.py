# LIA on VoxCeleb, 256 px, M = 20 (the paper's main setting).
_base_ = [
    "../_base_/models/lia.py",
    "../_base_/datasets/vox_256.py",
    "../_base_/schedules/lia_800k.py",
    "../_base_/default_runtime.py",
]
