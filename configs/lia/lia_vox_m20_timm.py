# LIA with a timm backbone as the encoder (random init; pretrained=True uses timm's local cache).
_base_ = "./lia_vox_m20.py"
model = dict(encoder=dict(_delete_=True, type="lmtk.TimmEncoder.v1", backbone="resnet34", pretrained=False))
