# taichi videos: the VoxCeleb pipeline and loader, without identity grouping (one item per video).
# Override the root with --cfg-options train_dataloader.dataset.data_root=DIR
_base_ = "./vox_256.py"
data_root = "data/taichi"
train_dataloader = dict(dataset=dict(data_root=data_root, group_by_identity=False, repeats=50))
