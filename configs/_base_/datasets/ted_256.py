# ted videos: the VoxCeleb loader with the published TED augmentation (docs/training.md): a horizontal
# flip and the published colour jitter (one adjustment of four survives: mode="last_only").
# Override the root with --cfg-options train_dataloader.dataset.data_root=DIR
_base_ = "./vox_256.py"
data_root = "data/ted"
train_pipeline = [
    dict(type="PairedRandomFlip", prob=0.5),
    dict(type="PairedColorJitter", brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1, mode="last_only"),
]
train_dataloader = dict(dataset=dict(data_root=data_root, repeats=50, pipeline=train_pipeline))
