# The recipe of the CPU-sized synthetic configs (docs/training.md): the published schedule and runtime
# with Adam with momentum (betas 0.9, 0.99), lr 0.01 decayed to zero on a cosine over the whole run,
# 2500 iterations, and no lazy regularisation of the generator.
_base_ = ["./lia_800k.py", "../default_runtime.py"]
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
