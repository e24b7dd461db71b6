# vox videos: data_root/train/*.mp4 (or frame folders), pairs of frames from one video, 256 px.
# Override the root with --cfg-options train_dataloader.dataset.data_root=DIR
# The published LIA recipe (docs/training.md): no augmentation, one item per video, a total batch of 32.
data_root = "data/vox"
train_pipeline = []
train_dataloader = dict(
    batch_size=32,
    # 32 for one training step over all processes: each of N processes loads 32 / N (the paper: 4 GPUs x 8)
    batch_size_scope="total",
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
        group_by_identity=False,
        repeats=100,
        pipeline=train_pipeline,
    ),
)
val_dataloader = None
test_dataloader = None
