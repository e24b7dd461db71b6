# Synthetic talking faces rendered by lmtk itself (made on first use), 64 px.
data_root = "data/synthetic_64"
synthetic = dict(num_train=96, num_test=8, num_frames=32, size=64, seed=0, layout="video")
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    pin_memory=False,
    sampler=dict(type="ResumableInfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(
        type="lmtk.SyntheticVideoPairs.v1",
        data_root=data_root,
        split="train",
        size=64,
        generate=synthetic,
        repeats=20,
        frame_cache_mb=128,  # the whole set is 36 MB: each clip is decoded once per worker
        pipeline=[dict(type="PairedRandomFlip", prob=0.5)],
    ),
)
val_dataloader = None
test_dataloader = None
