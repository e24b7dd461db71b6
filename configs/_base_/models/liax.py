# LIA-X (Wang et al. 2025) as published: 512 px, latent 1024, 40 directions (14 named), one linear
# motion layer, encoder blocks that widen first, flow residual blocks, a refinement path, and warps with
# align_corners=True. Only inference code and weights are published: the loss below is lmtk's LIA set
# (docs/liax.md).
model = dict(
    type="lmtk.LIAX.v1",
    size=512,
    latent_dim=1024,
    channel_multiplier=1,
    channel_base=65536,
    max_channels=1024,
    encoder=dict(type="lmtk.LIAEncoder.v1", widen_first=True),
    generator=dict(type="lmtk.LIAXGenerator.v1", warper=dict(type="lmtk.FlowWarper.v1", align_corners=True)),
    motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", num_directions=40),
    motion_mlp_layers=1,
    # None: LIA-X's 14 published direction names (lmtk.models.liax.LIAX_DIRECTION_NAMES: yaw1, pitch, eyes...)
    # for its 40 directions; a dict {name: index} gives others
    direction_names=None,
    discriminator=dict(type="lmtk.StyleGAN2Discriminator.v1"),
    loss=dict(
        type="lmtk.LIALoss.v1",
        l1_weight=1.0,
        perceptual_weight=10.0,
        adversarial_weight=1.0,
        perceptual=dict(pretrained=True),
    ),
    data_preprocessor=dict(type="BaseDataPreprocessor", non_blocking=True),
)
