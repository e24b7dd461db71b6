# LIA at a CPU size on lmtk's synthetic talking faces: the quickstart (about 15 minutes on 2 cores).
# Changes from the paper's recipe, each measured to matter within a CPU budget (docs/training.md):
# - no adversarial term (and no VGG19, which needs ImageNet weights): L1 only; with 0.1 x adversarial
#   the held-out error after the same time was twice as high;
# - the warps start at the identity (exact sampling grid, zero flow heads) and the RGB heads at zero,
#   so the model need not first unlearn random warps and colour noise;
# - Adam with momentum (betas 0.9, 0.99), lr 0.01 decayed to zero on a cosine over the whole run.
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
    generator=dict(warper=dict(align_corners=True), flow_init_gain=0.0, rgb_init_gain=0.0),
    loss=dict(perceptual_weight=0.0, adversarial_weight=0.0, perceptual=dict(pretrained=False)),
)
train_cfg = dict(max_iters=2500)
optim_wrapper = dict(
    generator=dict(optimizer=dict(lr=0.01, betas=(0.9, 0.99)), reg_interval=None),
    discriminator=dict(optimizer=dict(lr=0.002)),  # used by configs that turn the adversarial term on
)
# "max_iters" follows train_cfg.max_iters, also when it is overridden on the command line. Only the
# generator is scheduled: without the adversarial term the discriminator never steps.
param_scheduler = dict(
    _delete_=True,
    generator=[dict(type="CosineAnnealingLR", by_epoch=False, begin=0, end="max_iters", T_max="max_iters")],
    discriminator=[],
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
