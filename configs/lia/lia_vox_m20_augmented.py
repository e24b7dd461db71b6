# A variant of the paper setting, not the published recipe (docs/training.md): lmtk's VoxCeleb options
# on top of lia_vox_m20 - each item an identity, then one of its clips (identities with many clips are not
# over-sampled), a horizontal flip and the chained colour jitter (all four adjustments).
_base_ = "./lia_vox_m20.py"
train_pipeline = [
    dict(type="PairedRandomFlip", prob=0.5),
    dict(type="PairedColorJitter", brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1),
]
train_dataloader = dict(dataset=dict(group_by_identity=True, pipeline=train_pipeline))
