# vox videos: data_root/train/*.mp4 (or frame folders), pairs of frames from one video, 256 px.
# Override the root with --cfg-options train_dataloader.dataset.data_root=DIR
data_root = "data/vox"
train_pipeline = [
    dict(type="PairedRandomFlip", prob=0.5),
    dict(type="PairedColorJitter", brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type="ResumableInfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(
        type="lmtk.VideoPairDataset.v1",
        data_root=data_root,
        split="train",
        size=256,
        group_by_identity=True,
        repeats=100,
        pipeline=train_pipeline,
    ),
)
val_dataloader = None
test_dataloader = None
