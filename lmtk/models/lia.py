"""The LIA model: inference API (transfer, reference, directions) and GAN training step on mmengine."""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Callable, Mapping

import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from ..functional.checks import check_shape
from ..registry import build, get, models
from .direction_names import check_direction_names, edit_offsets
from .interfaces import Discriminator, LossSet, check_interface
from .lia_generator import LIAGenerator

__all__ = ["LIA", "check_image_shape", "check_image_values", "v1_factory"]

_RANGE_SLACK = 0.1  # resampled or generated images overshoot [-1, 1] a little; 0-255 values do not pass


def _unwrap(module: nn.Module) -> nn.Module:
    return getattr(module, "module", module)


def _check_batch(count: int, batch: int, name: str) -> None:
    """A batch of 1 is broadcast over the driving batch; another batch size must be the driving one."""
    if count not in (1, batch):
        raise ValueError(f"{name} batch {count} does not match driving batch {batch} (use 1 or {batch})")


def check_image_shape(name: str, images: torch.Tensor, size: int) -> None:
    """``images`` must be a ``(B, 3, size, size)`` tensor; another size is refused with the fix."""
    check_shape(images, ["B", 3, "H", "W"], name)
    if images.shape[-2:] != (size, size):
        raise ValueError(
            f"{name} is {images.shape[-1]}x{images.shape[-2]} but the model size is {size}; "
            f"resize it first (lmtk.apis.Animator resizes images given as files, PIL images or uint8 "
            f"arrays, not tensors)"
        )


def check_image_values(name: str, images: torch.Tensor) -> None:
    """``images`` must be finite and in [-1, 1]: 0-255 values gave saturated output and NaN gave NaN,
    without an error.

    Only a tensor on the CPU is checked: on a GPU, reading the values back would make every call wait
    for the device.
    """
    if images.device.type != "cpu" or not images.numel():
        return
    low, high = (float(v) for v in torch.aminmax(images))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} has NaN or infinite values")
    if low < -1 - _RANGE_SLACK or high > 1 + _RANGE_SLACK:
        hint = " (x / 127.5 - 1 for values 0-255)" if high > 2 else ""
        raise ValueError(
            f"{name} has values in [{low:.4g}, {high:.4g}], but a tensor is read as an image in "
            f"[-1, 1]; rescale it{hint} or pass a numpy uint8 array"
        )


def _check_perceptual_size(perceptual: nn.Module | None, size: int) -> None:
    """The pyramid's smallest image must still pass the feature network: found at build, not mid-step."""
    needed = getattr(perceptual, "min_image_size", None)
    if needed is not None and size < needed:
        raise ValueError(
            f"the perceptual loss needs images of at least {needed} px (its pyramid scales "
            f"{perceptual.pyramid.scales} shrink a {size} px image below what VGG19 takes); drop the small "
            f"scales: model.loss.perceptual.scales={perceptual.scales_for(size)}"
        )


@models.register("lmtk.LIA.v2")
class LIA(BaseModel):
    """Latent Image Animator.

    ``generator`` (the whole G, a :class:`LIAGenerator`) and ``discriminator`` are top-level attributes so
    mmengine's ``MMSeparateDistributedDataParallel`` wraps each in its own DDP.

    ``lmtk.LIA.v2`` builds it; ``lmtk.LIA.v1`` takes the synthesis network under its former key,
    ``generator``, and builds the same model (same state dict).

    Args:
        encoder, synthesis, motion_basis: component modules or configs (see :class:`LIAGenerator`).
        discriminator: discriminator module or config; None for an inference-only model.
        loss: loss set module or config (``lmtk.LIALoss.v1``); None for an inference-only model.
        motion_mlp_layers, motion_mlp_activation: see :class:`LIAGenerator`.
        size, latent_dim, channel_multiplier, channel_base, max_channels: shared architecture settings,
            filled into every component config that accepts them and does not set them itself, so an
            ablation or a tiny test model changes one value (``--cfg-options model.size=64``).
        direction_names: names for some motion directions, ``{name: index}`` (or a list naming
            directions 0, 1, ... in order), so edits can say ``{"yaw1": 0.5}`` (docs/liax.md).
        data_preprocessor: mmengine data preprocessor config (moves batches to the device).
        init_cfg: mmengine init config.

    Images are ``(B, 3, H, W)`` float in [-1, 1].
    """

    builds_own_children = True  # fills the shared settings into component configs before building
    renamed_keys = {"generator": "synthesis"}  # v1's config key -> v2's, named in the error of a v1 key

    def __init__(
        self,
        encoder: nn.Module | dict,
        synthesis: nn.Module | dict,
        motion_basis: nn.Module | dict,
        discriminator: nn.Module | dict | None = None,
        loss: nn.Module | dict | None = None,
        motion_mlp_layers: int = 5,
        motion_mlp_activation: str | None = None,
        size: int | None = None,
        latent_dim: int | None = None,
        channel_multiplier: float | None = None,
        channel_base: int | None = None,
        max_channels: int | None = None,
        direction_names: Mapping[str, int] | list[str] | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        shared = dict(
            size=size,
            latent_dim=latent_dim,
            channel_multiplier=channel_multiplier,
            channel_base=channel_base,
            max_channels=max_channels,
        )
        shared = {k: v for k, v in shared.items() if v is not None}
        encoder, synthesis, motion_basis, discriminator = (
            _with_shared(cfg, shared, kind)
            for cfg, kind in (
                (encoder, "encoders"),
                (synthesis, "synthesis_networks"),
                (motion_basis, "motion_bases"),
                (discriminator, "discriminators"),
            )
        )
        self.generator = LIAGenerator(
            encoder, synthesis, motion_basis, motion_mlp_layers, motion_mlp_activation
        )
        self.discriminator = build(discriminator, "discriminators")
        if self.discriminator is not None:
            check_interface(self.discriminator, Discriminator)
        self.loss = build(loss, "loss_sets")
        if self.loss is not None:
            check_interface(self.loss, LossSet)
            _check_perceptual_size(getattr(self.loss, "perceptual", None), self.generator.size)
        self.direction_names = check_direction_names(
            direction_names, self.generator.motion_basis.num_magnitudes
        )
        # counts optimisation steps so lazy regularisation resumes exactly; saved with the weights
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long))

    # ----------------------------------------------------------------- inference API
    @property
    def net(self) -> LIAGenerator:
        """The generator network, unwrapped from DDP."""
        return _unwrap(self.generator)

    @property
    def size(self) -> int:
        return self.net.size

    def _check_images(self, name: str, images: torch.Tensor) -> None:
        check_image_shape(name, images, self.size)

    def _check_weights(self) -> torch.dtype:
        """The weights' dtype: float32 (or float64); half-precision weights are refused with the fix."""
        weights = next(self.net.parameters()).dtype
        if weights in (torch.float16, torch.bfloat16):
            raise ValueError(
                f"the model's weights are {str(weights).removeprefix('torch.')}: lmtk keeps float32 weights and "
                f"runs lower precision under autocast; call model.float() and use torch.autocast (or "
                f"Animator(dtype='bfloat16'))"
            )
        return weights

    def _check_input(self, name: str, images: torch.Tensor) -> None:
        """:meth:`_check_images`, a dtype the weights take (any float under autocast) and, on the CPU,
        values in [-1, 1] (:func:`check_image_values`)."""
        self._check_images(name, images)
        weights = self._check_weights()
        if not images.is_floating_point() or (
            images.dtype != weights and not torch.is_autocast_enabled(images.device.type)
        ):
            raise ValueError(
                f"{name} is a {str(images.dtype).removeprefix('torch.')} tensor but the model's weights are "
                f"{str(weights).removeprefix('torch.')}; convert it with .to({weights})"
            )
        check_image_values(name, images)

    def edit_offsets(
        self, edits: Mapping[str | int, float], like: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(1, M)`` magnitude offsets of ``edits``: ``{direction: value}``, a direction being one of
        :attr:`direction_names` or an index."""
        return edit_offsets(edits, self.direction_names, self.net.motion_basis.num_magnitudes, like)

    def edit(self, source: torch.Tensor, edits: Mapping[str | int, float]) -> torch.Tensor:
        """``source`` moved along named or numbered directions: ``G(z_{s->r} + D(A_{r->s} + edit))``.

        Example: ``model.edit(source, {"yaw1": 0.5, "eyes": -0.3})``; an empty edit reconstructs the
        source through its own motion (LIA-X's image editing).
        """
        self._check_input("source", source)
        net = self.net
        encoded = net.encode_source(source)
        moved = net.path(encoded.magnitudes + self.edit_offsets(edits, encoded.magnitudes))
        return net.animate(encoded, moved)  # eq. 11 with the source's own motion, edited

    def transfer(
        self,
        source: torch.Tensor,
        driving: torch.Tensor,
        mode: str = "absolute",
        driving_first: torch.Tensor | None = None,
        edit: Mapping[str | int, float] | None = None,
    ) -> torch.Tensor:
        """Animate ``source`` with the motion of ``driving``.

        ``absolute`` (eq. 11): ``z = z_{s->r} + w_{r->d}``. ``relative`` (eq. 12):
        ``z = z_{s->r} + (w_{r->d} - w_{r->1}) + w_{r->s}`` with ``driving_first`` the driving frame whose
        pose matches the source. A source batch of 1 is broadcast over the driving batch (see
        :func:`~lmtk.models.lia_generator.transfer_latent`).

        ``edit`` (``{direction: value}``, see :meth:`edit`) moves the source first (LIA-X's
        edit-then-animate): relative mode adds it to the source's magnitudes ``A_{r->s}``, absolute mode
        adds its path ``D(edit)``.
        """
        self._check_input("source", source)
        self._check_input("driving", driving)
        if mode not in ("absolute", "relative"):
            raise ValueError(f"mode must be 'absolute' or 'relative', got {mode!r}")
        batch = driving.shape[0]
        _check_batch(source.shape[0], batch, "source")
        net = self.net
        start_path = None
        if mode == "relative":
            if driving_first is None:
                raise ValueError(
                    "relative transfer needs driving_first, the driving frame matching the source pose"
                )
            self._check_input("driving_first", driving_first)
            _check_batch(driving_first.shape[0], batch, "driving_first")
            start_path = net.motion(driving_first)[1]
        encoded = net.encode_source(source, None if edit is None else self.edit_offsets(edit))
        return net.animate(encoded, net.motion(driving)[1], start_path)

    def reference(self, source: torch.Tensor) -> torch.Tensor:
        """The reference image ``x_r = G(z_{s->r})`` (appendix B.4)."""
        self._check_input("source", source)
        code, features = self.net.encode(source)
        return self.net.decode(code, features)

    def directions(self) -> torch.Tensor | None:
        """The motion basis ``(latent_dim, M)``, orthonormal columns; None without a basis."""
        return self.net.directions()

    # ----------------------------------------------------------------- mmengine interface
    def forward(
        self,
        source: torch.Tensor | None = None,
        driving: torch.Tensor | None = None,
        mode: str = "tensor",
        **kwargs,
    ):
        """``tensor``: the reconstruction; ``predict``: a list of per-sample dicts; ``loss``: G losses."""
        if source is None or driving is None:
            raise ValueError("LIA.forward needs source and driving images")
        if mode == "tensor":
            return self.generator(source, driving)
        if mode == "predict":
            fake = self.generator(source, driving)
            return [
                {"fake": f, "real": r, "source": s, **{k: v[i] for k, v in kwargs.items() if _indexable(v)}}
                for i, (f, r, s) in enumerate(zip(fake, driving, source))
            ]
        if mode == "loss":
            self._require_training_parts()
            fake, extra = self._reconstruct(source, driving)
            return {**self.loss.generator_losses(fake, driving, self.discriminator(fake)), **extra}
        raise ValueError(f"mode must be 'tensor', 'predict' or 'loss', got {mode!r}")

    def _reconstruct(self, source: torch.Tensor, driving: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The training reconstruction and the model's own extra losses (none for LIA)."""
        return self.generator(source, driving), {}

    def _require_training_parts(self) -> None:
        if self.discriminator is None or self.loss is None:
            raise RuntimeError(
                "This LIA model has no discriminator or loss set; build it from a training config "
                "(for example configs/lia/lia_vox_m20.py) to train it"
            )

    def train_step(self, data: Mapping, optim_wrapper: OptimWrapperDict) -> dict[str, torch.Tensor]:
        """One generator update (D frozen), then one discriminator update on the same reconstruction.

        With ``adversarial_weight=0`` the discriminator is neither run nor trained. With mmengine's
        ``accumulative_counts=k`` (the same for both networks) each call accumulates the gradients of one
        batch, and both networks step once per ``k`` batches, as one step of a ``k`` times larger batch:
        D stays as it was for all ``k`` generator losses, and lazy R1 counts these steps. The gradient
        norms are logged at the steps.
        """
        self._require_training_parts()
        data = self.data_preprocessor(data, True)
        source, driving = data["source"], data["driving"]
        g_optim = optim_wrapper["generator"]
        adversarial = bool(self.loss.adversarial_weight)

        # D is a fixed function in the G step: call it unwrapped so its DDP expects no gradients
        frozen_discriminator = _unwrap(self.discriminator)
        frozen_discriminator.requires_grad_(False)
        with g_optim.optim_context(self.generator):
            fake, extra = self._reconstruct(source, driving)
            fake_logits = frozen_discriminator(fake) if adversarial else None
            g_losses = {**self.loss.generator_losses(fake, driving, fake_logits), **extra}
        g_loss, log_vars = self.parse_losses(g_losses)
        stepped = _update(g_optim, g_loss, self.generator, log_vars, "grad_norm_g")
        frozen_discriminator.requires_grad_(True)
        if adversarial:
            log_vars.update(self._discriminator_step(driving, fake.detach(), optim_wrapper["discriminator"]))
        if stepped:
            self.train_steps += 1
        return log_vars

    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, d_optim: OptimWrapper) -> dict:
        with d_optim.optim_context(self.discriminator):
            d_losses = self.loss.discriminator_losses(self.discriminator(real), self.discriminator(fake))
            # the counter is read (a host sync on a GPU) only when R1 is on
            if self.loss.r1_weight and self.loss.is_r1_step(int(self.train_steps)):
                real = real.detach().requires_grad_(True)
                d_losses.update(self.loss.r1_loss(self.discriminator(real), real))
        d_loss, log_vars = self.parse_losses(d_losses)
        log_vars.pop("loss")
        log_vars["loss_d"] = d_loss.detach()
        _update(d_optim, d_loss, self.discriminator, log_vars, "grad_norm_d")
        return log_vars


def v1_factory(model_class: type) -> Callable[..., LIA]:
    """A factory of ``model_class`` for v1 configs, which name the synthesis network ``generator``: the
    configs and checkpoints written before v2 build the same model, with the same state dict."""

    def build_v1(*args, generator: nn.Module | dict, **kwargs) -> LIA:
        return model_class(*args, synthesis=generator, **kwargs)

    build_v1.__doc__ = f"{model_class.__name__} from a v1 config: its ``generator`` is v2's ``synthesis``."
    build_v1.builds_own_children = model_class.builds_own_children
    build_v1.renamed_keys = {new: old for old, new in model_class.renamed_keys.items()}
    # registry.build checks a config's numbers against the factory's annotations: v1's are v2's
    hints = typing.get_type_hints(model_class.__init__)
    build_v1.__annotations__ = {("generator" if k == "synthesis" else k): v for k, v in hints.items()}
    return build_v1


models.register("lmtk.LIA.v1", func=v1_factory(LIA))


def _with_shared(cfg, shared: dict, kind: str):
    """``cfg`` with the shared settings its factory accepts and does not set itself."""
    if not isinstance(cfg, Mapping) or not shared:
        return cfg
    parameters = inspect.signature(get(cfg["type"], kind)).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {**{k: v for k, v in shared.items() if takes_any or k in parameters}, **cfg}


def _indexable(value) -> bool:
    return isinstance(value, torch.Tensor | list | tuple)


def _update(
    optim: OptimWrapper, loss: torch.Tensor, module: nn.Module, log_vars: dict, norm_name: str
) -> bool:
    """``optim.update_params(loss)`` that logs the (unscaled) gradient norm under ``norm_name`` before it
    steps; whether it stepped (with ``accumulative_counts=k``, once every ``k`` calls)."""
    optim.backward(optim.scale_loss(loss))  # the loss over k, so k batches sum to their mean
    if not optim.should_update():
        return False
    scaler = getattr(optim, "loss_scaler", None)
    if scaler is not None and scaler.is_enabled():
        scaler.unscale_(optim.optimizer)
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    norm = (
        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
        if grads
        else loss.new_zeros(())
    )
    optim.step()
    optim.zero_grad()
    log_vars[norm_name] = norm.detach()
    return True
