# The published schedule: Adam lr 0.002, betas (0, 0.99), StyleGAN2 reg-ratio scaling (G every 4, D every 16).
train_cfg = dict(type="ExactResumeIterBasedTrainLoop", max_iters=800_000)
val_cfg = None
test_cfg = None
optim_wrapper = dict(
    constructor="LIAOptimWrapperConstructor",
    generator=dict(
        type="OptimWrapper", optimizer=dict(type="Adam", lr=0.002, betas=(0.0, 0.99)), reg_interval=4
    ),
    discriminator=dict(
        type="OptimWrapper", optimizer=dict(type="Adam", lr=0.002, betas=(0.0, 0.99)), reg_interval=16
    ),
)
param_scheduler = []
