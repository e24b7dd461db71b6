# LIA as in the paper: 256 px, latent 512, M = 20 directions, L1 + 10 x VGG19 pyramid + adversarial.
model = dict(
    type="lmtk.LIA.v2",
    size=256,
    latent_dim=512,
    channel_multiplier=1,
    encoder=dict(type="lmtk.LIAEncoder.v1"),
    synthesis=dict(type="lmtk.FlowGenerator.v1", warper=dict(type="lmtk.FlowWarper.v1", align_corners=False)),
    motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", num_directions=20),
    motion_mlp_layers=5,
    discriminator=dict(type="lmtk.StyleGAN2Discriminator.v1"),
    loss=dict(
        type="lmtk.LIALoss.v1",
        l1_weight=1.0,
        perceptual_weight=10.0,
        adversarial_weight=1.0,
        # VGG19 ImageNet weights from torchvision's cache, or weights_path=...; pretrained=False for tests
        perceptual=dict(pretrained=True),
    ),
    # asynchronous copies of the (pinned) batches to the GPU: a blocking one waits for the previous step
    data_preprocessor=dict(type="BaseDataPreprocessor", non_blocking=True),
)
