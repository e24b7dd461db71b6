# LIA at a CPU size on lmtk's synthetic talking faces: the quickstart (about 15 minutes on 2 cores).
# Changes from the paper's recipe, each measured to matter within a CPU budget (docs/training.md):
# - no adversarial term (and no VGG19, which needs ImageNet weights): L1 only; with 0.1 x adversarial
#   the held-out error after the same time was twice as high;
# - the warps start at the identity (exact sampling grid, zero flow heads) and the RGB heads at zero,
#   so the model need not first unlearn random warps and colour noise;
# - Adam with momentum (betas 0.9, 0.99), lr 0.01 decayed to zero on a cosine over the whole run
#   (_base_/schedules/synthetic_cpu.py, which the small LIA-X shares).
_base_ = [
    "../_base_/models/lia.py",
    "../_base_/datasets/synthetic_64.py",
    "../_base_/schedules/synthetic_cpu.py",
]
model = dict(
    size=64,
    latent_dim=64,
    channel_base=1024,
    max_channels=64,
    synthesis=dict(warper=dict(align_corners=True), flow_init_gain=0.0, rgb_init_gain=0.0),
    loss=dict(perceptual_weight=0.0, adversarial_weight=0.0, perceptual=dict(pretrained=False)),
)
