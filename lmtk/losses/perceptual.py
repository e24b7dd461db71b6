"""VGG19 feature extractor and the pyramid perceptual loss of LIA (paper eq. 8).

The loss compares VGG19 activations ``relu1_1 … relu5_1`` of the generated and the real image at every
level of an anti-aliased image pyramid (scales 1, 1/2, 1/4, 1/8: 256 down to 32 px for 256 px images):

    L_vgg = sum_scales sum_layers  w_layer * mean |F_layer(fake_s) - F_layer(real_s)|

Real features carry no gradient. The paper's ``lambda = 10`` is not part of this module: the published
code put it into every layer weight; here the layer weights default to 1 and the loss set multiplies the
whole term by ``perceptual_weight = 10``, which is the same number.

The VGG19 is a fixed measuring instrument, not part of the model: :class:`VGG19Features` freezes its
parameters, stays in eval mode, and keeps its weights out of ``state_dict()`` (see the class docstring), so
training checkpoints do not carry 80 MB of ImageNet weights and never overwrite them on load. Pretrained
weights are read from torchvision's hub cache or an explicit file, never downloaded.

Example:
    >>> _ = torch.manual_seed(0)
    >>> loss_fn = PerceptualPyramidLoss(scales=(1.0, 0.5), network=VGG19Features(pretrained=False))
    >>> fake, real = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    >>> bool(loss_fn(fake, real) > 0), float(loss_fn(real, real))
    (True, 0.0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor

from lmtk.backbone_weights import MissingWeightsError, hub_cache_path, read_state_dict
from lmtk.functional.antialias import antialias_downsample, antialias_kernel1d

from ..functional.checks import check_shape

__all__ = [
    "VGG19_LAYERS",
    "vgg19_weights_url",
    "default_vgg19_weights_path",
    "VGG19Features",
    "AutocastFeatures",
    "ImagePyramid",
    "PerceptualPyramidLoss",
]

# The first relu of each block; torchvision vgg19().features[0:2], [2:7], [7:12], [12:21], [21:30].
VGG19_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# torchvision's configuration "E" (VGG19): conv widths, "M" = 2x2 max pooling.
_VGG19_CFG = (64, 64, "M", 128, 128, "M", *(256,) * 4, "M", *(512,) * 4, "M", *(512,) * 4, "M")
# Kept in sync with torchvision.models.VGG19_Weights.IMAGENET1K_V1.url, used when torchvision is absent.
_FALLBACK_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_weights_url() -> str:
    """Download address of torchvision's ImageNet VGG19 weights (``VGG19_Weights.IMAGENET1K_V1``)."""
    try:
        from torchvision.models import VGG19_Weights
    except ImportError:
        return _FALLBACK_VGG19_URL
    return VGG19_Weights.IMAGENET1K_V1.url


def default_vgg19_weights_path() -> Path:
    """Where torchvision would cache the VGG19 weights: ``torch.hub.get_dir()/checkpoints/<file>``."""
    return hub_cache_path(vgg19_weights_url())


def _vgg19_stack() -> tuple[list[nn.Module], dict[str, int]]:
    """torchvision's ``vgg19().features`` layers and the index of every ``relu{block}_{conv}``."""
    layers: list[nn.Module] = []
    relu_index: dict[str, int] = {}
    in_channels, block, conv = 3, 1, 0
    for width in _VGG19_CFG:
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            block, conv = block + 1, 0
            continue
        conv += 1
        # In-place is safe: a tapped relu output is only read by the next conv or pool.
        layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
        relu_index[f"relu{block}_{conv}"] = len(layers) - 1
        in_channels = width
    return layers, relu_index


def _missing_weights(path: Path) -> MissingWeightsError:
    return MissingWeightsError(
        "VGG19",
        "the perceptual loss",
        path,
        vgg19_weights_url(),
        f"or name the file in the config, e.g. perceptual=dict(weights_path='/path/to/{path.name}'), "
        "or use pretrained=False for randomly initialised VGG19 features (tests and smoke runs only: "
        "the loss then measures no perceptual similarity).",
    )


def _drop_frozen_parameters(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    # state_dict post-hook; also honoured by mmengine's checkpoint saver.
    for name, _ in module.named_parameters():
        state_dict.pop(prefix + name, None)


def _supply_frozen_parameters(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    # load_state_dict pre-hook: the current weights stand in for whatever the checkpoint has (or lacks),
    # so strict loading succeeds and the weights file stays the only source of the VGG weights.
    for name, param in module.named_parameters():
        state_dict[prefix + name] = param.detach()


class VGG19Features(nn.Module):
    """Frozen ImageNet VGG19 that maps images in ``[-1, 1]`` to a list of relu activations.

    Args:
        pretrained: load torchvision's ImageNet weights from the hub cache
            (:func:`default_vgg19_weights_path`); raise :class:`FileNotFoundError` if the file is missing.
            ``False`` keeps torchvision's random initialisation (deterministic under ``torch.manual_seed``).
        weights_path: a torchvision ``vgg19`` state_dict file (e.g. ``vgg19-dcbb9e9d.pth``; keys
            ``features.N.weight``) or one of its ``features`` module (``N.weight``). Loaded whatever
            ``pretrained`` says.
        layers: relu names to return, in this order (``relu1_1`` … ``relu5_4``); the network is cut after
            the deepest one.

    The extractor is a fixed instrument: parameters have ``requires_grad=False`` (they never enter an
    optimizer), :meth:`train` keeps eval mode, the normalisation constants are non-persistent buffers, and
    hooks keep the parameters out of ``state_dict()`` and make ``load_state_dict`` keep the current ones.
    Hooks rather than holding the network outside the module tree, because ``.to(device)``, DDP and
    ``deepcopy`` must still see it as a submodule. The price: ``vgg.state_dict()`` is empty by design.

    Shape:
        input ``(B, 3, H, W)`` in ``[-1, 1]`` (clamped), ``H, W >= 2**pools`` before the deepest layer;
        output ``[(B, C_i, H_i, W_i)]`` for each name in ``layers``.
    """

    def __init__(
        self,
        pretrained: bool = True,
        weights_path: str | os.PathLike | None = None,
        layers: Sequence[str] = VGG19_LAYERS,
    ) -> None:
        super().__init__()
        if weights_path is None and pretrained:
            weights_path = default_vgg19_weights_path()
        # Checked before building the network: fail fast, with directions.
        if weights_path is not None and not Path(weights_path).is_file():
            raise _missing_weights(Path(weights_path))
        stack, relu_index = _vgg19_stack()
        self.layer_names = tuple(layers)
        unknown = [name for name in self.layer_names if name not in relu_index]
        if unknown or not self.layer_names:
            raise ValueError(f"Unknown VGG19 layers {unknown or '(none)'}; choose from {list(relu_index)}")
        self._taps = tuple(relu_index[name] for name in self.layer_names)
        depth = max(self._taps) + 1
        self._deepest = self.layer_names[self._taps.index(depth - 1)]
        self.layers = nn.Sequential(*stack[:depth])
        self._min_size = 2 ** sum(isinstance(m, nn.MaxPool2d) for m in self.layers)
        self._init_random()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        if weights_path is not None:
            self.load_weights(weights_path)

        self.requires_grad_(False)
        self.eval()
        self.register_state_dict_post_hook(_drop_frozen_parameters)
        self.register_load_state_dict_pre_hook(_supply_frozen_parameters)

    def _init_random(self) -> None:
        # torchvision's VGG initialisation keeps random activations from vanishing over 16 layers.
        for module in self.layers:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    @torch.no_grad()
    def load_weights(self, path: str | os.PathLike) -> None:
        """Load a torchvision ``vgg19`` (or ``vgg19().features``) state_dict file; extra keys are ignored."""
        path = Path(path)
        if not path.is_file():
            raise _missing_weights(path)
        state = read_state_dict(path, "VGG19")
        own, missing = {}, []
        for key in self.layers.state_dict():
            found = next((k for k in (f"features.{key}", key) if k in state), None)
            if found is None:
                missing.append(f"features.{key}")
            else:
                own[key] = state[found]
        if missing:
            raise ValueError(f"{path} is not a torchvision VGG19 state_dict: missing {', '.join(missing)}")
        self.layers.load_state_dict(own)

    def train(self, mode: bool = True) -> VGG19Features:
        # A fixed instrument: the parent's train() must not put it into training mode.
        return super().train(False)

    def forward(self, image: Tensor) -> list[Tensor]:
        check_shape(image, ["B", 3, "H", "W"], "image")
        if min(image.shape[-2:]) < self._min_size:
            raise ValueError(
                f"image of {tuple(image.shape[-2:])} px is too small for VGG19 up to {self._deepest}: "
                f"needs at least {self._min_size} px (check the pyramid's smallest scale)"
            )
        # Outside autocast a bf16 image meets float32 weights; the network's dtype wins.
        x = image.to(self.mean.dtype).clamp(-1.0, 1.0)
        x = ((x + 1.0) / 2.0 - self.mean) / self.std
        found: dict[int, Tensor] = {}
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index in self._taps:
                found[index] = x
        return [found[index] for index in self._taps]

    def extra_repr(self) -> str:
        return f"layers={self.layer_names}"


def _at_least_float32(x: Tensor) -> Tensor:
    # Reductions of bf16/fp16 values lose the small differences a loss is made of; float64 stays.
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _as_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
    return dtype


class AutocastFeatures(nn.Module):
    """Run a feature network at a fixed precision, whatever autocast the caller is in; float32 out.

    ``dtype=float32`` turns autocast off around the network (a loss that does not change with the training
    step's precision); ``bfloat16``/``float16`` run it under ``torch.autocast`` on the input's device type
    (speed, also when the step itself is float32). Features come back as float32 so the L1 reductions of
    the loss are not done in a 7- or 10-bit mantissa.

    Args:
        network: maps ``(B, 3, H, W)`` to a list of features, e.g. :class:`VGG19Features`.
        dtype: ``torch.float32``, ``torch.bfloat16`` or ``torch.float16`` (or their names, for configs).
    """

    def __init__(self, network: nn.Module, dtype: torch.dtype | str = torch.float32) -> None:
        super().__init__()
        self.network = network
        self.dtype = _as_dtype(dtype)

    def forward(self, image: Tensor) -> list[Tensor]:
        device_type = image.device.type
        if self.dtype == torch.float32:
            with torch.autocast(device_type, enabled=False):
                features = self.network(image.float())
        else:
            with torch.autocast(device_type, dtype=self.dtype):
                features = self.network(image)
        return [f.float() for f in features]

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}"


class ImagePyramid(nn.Module):
    """Anti-aliased copies of an image at several scales (:func:`antialias_downsample`).

    The Gaussian kernels are non-persistent buffers: built once, moved with the module.

    Shape:
        input ``(B, C, H, W)``; output ``[(B, C, floor(H * s), floor(W * s)) for s in scales]``.
    """

    def __init__(self, scales: Sequence[float] = (1.0, 0.5, 0.25, 0.125), padding_mode: str = "constant"):
        super().__init__()
        self.scales = tuple(float(s) for s in scales)
        if not self.scales:
            raise ValueError("scales must not be empty")
        self.padding_mode = padding_mode
        for index, scale in enumerate(self.scales):
            if scale != 1.0:
                self.register_buffer(f"kernel{index}", antialias_kernel1d(scale), persistent=False)

    def forward(self, image: Tensor) -> list[Tensor]:
        # In the image's own dtype even under autocast: the blur costs little and a bf16 pyramid would
        # add its rounding to both sides of the loss.
        with torch.autocast(image.device.type, enabled=False):
            return [
                antialias_downsample(
                    image, scale, kernel=getattr(self, f"kernel{index}", None), padding_mode=self.padding_mode
                )
                for index, scale in enumerate(self.scales)
            ]

    def extra_repr(self) -> str:
        return f"scales={self.scales}, padding_mode={self.padding_mode!r}"


class PerceptualPyramidLoss(nn.Module):
    """``sum_s sum_l w_l * mean |F_l(fake_s) - F_l(real_s)|`` over an anti-aliased image pyramid.

    Args:
        scales: pyramid levels; 1 is the input itself.
        layer_weights: one weight per feature the network returns (0 skips that layer).
        network: feature extractor returning a list of ``(B, C_l, H_l, W_l)``; default
            ``VGG19Features(pretrained=True)``.

    Shape:
        fake, real: ``(B, 3, H, W)`` in ``[-1, 1]``; output: a float32 scalar. Only ``fake`` gets a gradient.
    """

    def __init__(
        self,
        scales: Sequence[float] = (1.0, 0.5, 0.25, 0.125),
        layer_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0, 1.0),
        network: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.pyramid = ImagePyramid(scales)
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.network = network if network is not None else VGG19Features(pretrained=True)
        names = getattr(self.network, "layer_names", None)
        if names is not None and len(names) != len(self.layer_weights):
            raise ValueError(f"{len(self.layer_weights)} layer_weights for {len(names)} layers {names}")

    def _min_size_at(self, scale: float) -> int:
        network = getattr(self.network, "network", self.network)  # through an AutocastFeatures wrapper
        return math.ceil(getattr(network, "_min_size", 1) / scale - 1e-9)

    @property
    def min_image_size(self) -> int:
        """The smallest image side whose every pyramid level the network takes (1 when it says nothing)."""
        return max(self._min_size_at(scale) for scale in self.pyramid.scales)

    def scales_for(self, size: int) -> tuple[float, ...]:
        """The pyramid's scales that a ``size`` px image can go through."""
        return tuple(scale for scale in self.pyramid.scales if self._min_size_at(scale) <= size)

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        check_shape(fake, ["B", "C", "H", "W"], "fake")
        if fake.shape != real.shape:
            raise ValueError(
                f"fake and real must be of one shape, got {tuple(fake.shape)}, {tuple(real.shape)}"
            )
        with torch.no_grad():
            real_levels = self.pyramid(real)
        total = fake.new_zeros((), dtype=torch.float32)
        for fake_level, real_level in zip(self.pyramid(fake), real_levels):
            fake_features = self.network(fake_level)
            with torch.no_grad():
                real_features = self.network(real_level)
            if len(fake_features) != len(self.layer_weights):
                raise ValueError(f"{len(fake_features)} features but {len(self.layer_weights)} layer_weights")
            for weight, f, r in zip(self.layer_weights, fake_features, real_features):
                if weight:
                    total = total + weight * (_at_least_float32(f) - _at_least_float32(r)).abs().mean()
        return total

    def extra_repr(self) -> str:
        return f"layer_weights={self.layer_weights}"
