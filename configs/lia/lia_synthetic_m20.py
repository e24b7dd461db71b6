# LIA at a CPU size on lmtk's synthetic talking faces: the quickstart (about 15 minutes on 2 cores).
# The loss keeps L1 and the adversarial term, so no VGG19 ImageNet weights are needed. Trained from
# scratch, the warps start at the identity (exact sampling grid, zero-initialised flow heads), which
# lets a small model learn to copy, then to move, within a CPU budget.
_base_ = [
    "../_base_/models/lia.py",
    "../_base_/datasets/synthetic_64.py",
    "../_base_/schedules/lia_800k.py",
    "../_base_/default_runtime.py",
]
model = dict(
    size=64,
    latent_dim=64,
    channel_base=1024,
    max_channels=64,
    generator=dict(warper=dict(align_corners=True), flow_init_gain=0.0),
    loss=dict(perceptual_weight=0.0, adversarial_weight=0.1, perceptual=dict(pretrained=False)),
)
train_cfg = dict(max_iters=1500)
optim_wrapper = dict(
    generator=dict(optimizer=dict(lr=0.005)),
    discriminator=dict(optimizer=dict(lr=0.005)),
)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, max_keep_ckpts=2),
)
custom_hooks = [
    dict(type="SampleGridHook", interval=500, num_samples=4),
    dict(type="RNGStateHook"),
]
env_cfg = dict(cudnn_benchmark=False)
