# LIA-X (Wang et al. 2025) as published: LIA (./lia.py) at 512 px, latent 1024, 40 directions (14 named),
# one linear motion layer, encoder blocks that widen first, flow residual blocks, a refinement path, and
# warps with align_corners=True. Only inference code and weights are published: the discriminator and
# loss are lmtk's LIA set, inherited (docs/liax.md).
_base_ = ["./lia.py"]
model = dict(
    type="lmtk.LIAX.v2",
    size=512,
    latent_dim=1024,
    channel_base=65536,
    max_channels=1024,
    encoder=dict(widen_first=True),
    synthesis=dict(type="lmtk.LIAXGenerator.v1", warper=dict(align_corners=True)),
    motion_basis=dict(num_directions=40),
    motion_mlp_layers=1,
    # None: LIA-X's 14 published direction names (lmtk.models.liax.LIAX_DIRECTION_NAMES: yaw1, pitch, eyes...)
    # for its 40 directions; a dict {name: index} gives others
    direction_names=None,
)
