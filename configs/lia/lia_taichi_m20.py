# LIA on TaiChiHD, 256 px, M = 20.
_base_ = [
    "../_base_/models/lia.py",
    "../_base_/datasets/taichi_256.py",
    "../_base_/schedules/lia_800k.py",
    "../_base_/default_runtime.py",
]
