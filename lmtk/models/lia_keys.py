"""The published LIA checkpoint (``{'gen': G.state_dict(), 'dis': D.state_dict(), ...}``): its keys,
mapped onto :class:`~lmtk.models.lia.LIA`'s module names.

Its constant FIR buffers are ignored on load and recomputed on export; tensors the published forward
pass never reads (``dec.to_rgb1``) are kept beside the weights, so an export round-trips exactly. A
missing, unknown or mis-shaped key fails with an error that names it. Reading and writing files is
:mod:`lmtk.checkpoint`'s; this module only renames tensors (the rule machinery: :mod:`.key_rules`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from ..checkpoint import CheckpointError
from .key_rules import BIAS4D, BUFFER_KEYS, MOD_WEIGHT, SAME, Rule, check_mapped, fir_buffers, map_keys

__all__ = [
    "FLOW_HEAD_RULES",
    "conv_layer_rules",
    "from_published",
    "is_published",
    "published_model_config",
    "res_block_rules",
    "rgb_head_rules",
    "styled_conv_rules",
    "to_published",
]


# The published networks' layers (rosinality's StyleGAN2 naming), shared with LIA-X's format. Its
# fused activation's bias is ``(1, C, 1, 1)`` in LIA's files and ``(C,)`` in LIA-X's: ``act_bias``.
def conv_layer_rules(act_bias: tuple = BIAS4D) -> list[Rule]:
    """A ``ConvLayer``: ``0`` the convolution, ``1`` the fused activation."""
    return [("0.weight", "conv.weight", SAME), ("1.bias", "act.bias", act_bias)]


def res_block_rules(act_bias: tuple = BIAS4D) -> list[Rule]:
    """A residual block: two ``ConvLayer``s (the second after its blur) and a blurred 1x1 skip."""
    return [
        ("conv1.0.weight", "conv1.conv.weight", SAME),
        ("conv1.1.bias", "conv1.act.bias", act_bias),
        ("conv2.1.weight", "conv2.conv.weight", SAME),
        ("conv2.2.bias", "conv2.act.bias", act_bias),
        ("skip.1.weight", "skip.conv.weight", SAME),
    ]


def styled_conv_rules(act_bias: tuple = BIAS4D, noise: bool = True) -> list[Rule]:
    """A ``StyledConv``: modulated convolution, its style affine, (noise strength,) activation."""
    return [
        ("conv.weight", "conv.weight", MOD_WEIGHT),
        ("conv.modulation.weight", "conv.affine.weight", SAME),
        ("conv.modulation.bias", "conv.affine.bias", SAME),
        *([("noise.weight", "noise_strength", SAME)] if noise else []),
        ("activate.bias", "act.bias", act_bias),
    ]


def rgb_head_rules(act_bias: tuple = BIAS4D) -> list[Rule]:
    """A ``ToRGB`` head: its own bias and a ``ConvLayer``."""
    return [
        ("bias", "bias", BIAS4D),
        *((f"conv.{p}", f"conv.{t}", f) for p, t, f in conv_layer_rules(act_bias)),
    ]


#: a flow head (a modulated 1x1 convolution to 2 channels and a bias): the same in LIA-X's format
FLOW_HEAD_RULES = [
    ("bias", "bias", BIAS4D),
    ("conv.weight", "conv.weight", MOD_WEIGHT),
    ("conv.modulation.weight", "conv.affine.weight", SAME),
    ("conv.modulation.bias", "conv.affine.bias", SAME),
]
_CONV_LAYER = conv_layer_rules()
_RES_BLOCK = res_block_rules()
_STYLED = styled_conv_rules()
_RGB_HEAD = rgb_head_rules()


def _generator_rules(num_blocks: int) -> list[Rule]:
    rules = [(f"enc.net_app.convs.0.{p}", f"encoder.stem.{t}", f) for p, t, f in _CONV_LAYER]
    rules += [(f"enc.net_app.convs.{{b+1}}.{p}", f"encoder.blocks.{{b}}.{t}", f) for p, t, f in _RES_BLOCK]
    rules += [
        (f"enc.net_app.convs.{num_blocks + 1}.weight", "encoder.to_code.weight", SAME),
        ("enc.fc.{b}.weight", "motion_mlp.layers.{b}.weight", SAME),
        ("enc.fc.{b}.bias", "motion_mlp.layers.{b}.bias", SAME),
        ("dec.direction.weight", "motion_basis.weight", SAME),
        ("dec.input.input", "synthesis.const_input", SAME),
    ]
    rules += [(f"dec.conv1.{p}", f"synthesis.conv1.{t}", f) for p, t, f in _STYLED]
    rules += [(f"dec.convs.{{2*s}}.{p}", f"synthesis.stages.{{s}}.conv_up.{t}", f) for p, t, f in _STYLED]
    rules += [(f"dec.convs.{{2*s+1}}.{p}", f"synthesis.stages.{{s}}.conv.{t}", f) for p, t, f in _STYLED]
    rules += [
        (f"dec.to_flows.{{s}}.{p}", f"synthesis.stages.{{s}}.to_flow.{t}", f) for p, t, f in FLOW_HEAD_RULES
    ]
    rules += [(f"dec.to_rgbs.{{s}}.{p}", f"synthesis.stages.{{s}}.to_rgb.{t}", f) for p, t, f in _RGB_HEAD]
    return rules


def _discriminator_rules() -> list[Rule]:
    rules = [(f"convs.0.{p}", f"stem.{t}", f) for p, t, f in _CONV_LAYER]
    rules += [(f"convs.{{b+1}}.{p}", f"blocks.{{b}}.{t}", f) for p, t, f in _RES_BLOCK]
    rules += [
        ("final_conv.0.weight", "final_conv.conv.weight", SAME),
        ("final_conv.1.bias", "final_conv.act.bias", BIAS4D),
        ("final_linear.0.weight", "final_fc.weight", SAME),
        ("final_linear.0.bias", "final_fc.bias", SAME),
        ("final_linear.1.weight", "logit.weight", SAME),
        ("final_linear.1.bias", "logit.bias", SAME),
    ]
    return rules


# Published tensors that lmtk's networks do not use: ``to_rgb1`` is built but never called by the
# published forward pass. They are kept beside the weights so an export round-trips exactly.
_UNUSED_GENERATOR_KEYS = re.compile(r"dec\.to_rgb1\..*")


def _num_encoder_blocks(keys) -> int:
    return len({k.split(".")[3] for k in keys if k.startswith("enc.net_app.convs.")}) - 2


def is_published(checkpoint: Any) -> bool:
    """True for a dict in the published LIA format (``'gen'`` holding ``enc.*``/``dec.*`` keys)."""
    return (
        isinstance(checkpoint, Mapping)
        and isinstance(checkpoint.get("gen"), Mapping)
        and any(str(k).startswith("enc.net_app.") for k in checkpoint["gen"])
    )


def published_model_config(checkpoint: Mapping) -> dict:
    """The lmtk model config of a published checkpoint, inferred from its tensor shapes."""
    gen = checkpoint["gen"]
    try:
        size = 2 ** (_num_encoder_blocks(gen) + 2)
        latent_dim = gen["enc.fc.0.weight"].shape[0]
        num_directions = gen["dec.direction.weight"].shape[1]
        finest_channels = gen["enc.net_app.convs.0.0.weight"].shape[0]
        coarsest_channels = gen["dec.input.input"].shape[1]
    except (KeyError, IndexError) as error:
        raise CheckpointError(f"not a complete published LIA generator: missing {error}") from error
    # base and cap reproduce the published table for any channel multiplier, and narrower models too
    shape = dict(size=size, channel_base=finest_channels * size, max_channels=coarsest_channels)
    return dict(
        type="lmtk.LIA.v2",
        encoder=dict(type="lmtk.LIAEncoder.v1", latent_dim=latent_dim, **shape),
        synthesis=dict(
            type="lmtk.FlowGenerator.v1",
            latent_dim=latent_dim,
            warper=dict(type="lmtk.FlowWarper.v1", align_corners=False),
            **shape,
        ),
        motion_basis=dict(
            type="lmtk.GramSchmidtBasis.v1", latent_dim=latent_dim, num_directions=num_directions
        ),
        discriminator=dict(type="lmtk.StyleGAN2Discriminator.v1", **shape) if "dis" in checkpoint else None,
    )


def from_published(checkpoint: Mapping, model_state: Mapping[str, torch.Tensor]) -> tuple[dict, dict]:
    """Map a published checkpoint onto ``model_state`` (an lmtk LIA ``state_dict()``).

    Returns ``(state_dict, extras)``: the lmtk state dict, checked key by key and shape by shape against
    ``model_state``, and the published tensors lmtk does not use (kept for an exact export).
    """
    gen = {k: v for k, v in checkpoint["gen"].items() if not BUFFER_KEYS.fullmatch(k)}
    extras = {k: gen.pop(k) for k in list(gen) if _UNUSED_GENERATOR_KEYS.fullmatch(k)}
    mapped, unknown = map_keys(gen, _generator_rules(_num_encoder_blocks(gen)), to_lmtk=True)
    if unknown:
        raise CheckpointError(f"unknown key(s) in the published generator: {', '.join(unknown[:5])}")
    state = {f"generator.{k}": v for k, v in mapped.items()}
    expected = {k: v for k, v in model_state.items() if k.startswith("generator.")}
    if checkpoint.get("dis") is not None and any(k.startswith("discriminator.") for k in model_state):
        dis = {k: v for k, v in checkpoint["dis"].items() if not BUFFER_KEYS.fullmatch(k)}
        mapped, unknown = map_keys(dis, _discriminator_rules(), to_lmtk=True)
        if unknown:
            raise CheckpointError(f"unknown key(s) in the published discriminator: {', '.join(unknown[:5])}")
        state.update({f"discriminator.{k}": v for k, v in mapped.items()})
        expected.update({k: v for k, v in model_state.items() if k.startswith("discriminator.")})
    check_mapped(state, expected, "published checkpoint")
    return state, extras


def _published_buffers(published_keys, encoder_prefix: str) -> dict[str, torch.Tensor]:
    """The constant FIR kernels the published format stores, rebuilt bit-exactly."""
    down, up = fir_buffers()
    buffers = {}
    for key in published_keys:
        block = re.fullmatch(re.escape(encoder_prefix) + r"(\d+)\.conv1\.0\.weight", key)
        if block:
            buffers[f"{encoder_prefix}{block.group(1)}.conv2.0.kernel"] = down.clone()
            buffers[f"{encoder_prefix}{block.group(1)}.skip.0.kernel"] = down.clone()
        stage = re.fullmatch(r"dec\.to_rgbs\.(\d+)\.bias", key)
        if stage:
            index = int(stage.group(1))
            buffers[f"dec.convs.{2 * index}.conv.blur.kernel"] = up.clone()
            buffers[f"dec.to_rgbs.{index}.upsample.kernel"] = up.clone()
            buffers[f"dec.to_flows.{index}.upsample.kernel"] = up.clone()
    return buffers


def _export(state: Mapping[str, torch.Tensor], rules: list[Rule], prefix: str) -> dict[str, torch.Tensor]:
    local = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    mapped, unknown = map_keys(local, rules, to_lmtk=False)
    if unknown:
        raise CheckpointError(f"{prefix}{unknown[0]} has no counterpart in the published format")
    return mapped


def to_published(
    model_state: Mapping[str, torch.Tensor], extras: Mapping[str, torch.Tensor] | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    """An lmtk LIA ``state_dict()`` in the published format: ``{'gen': ..., 'dis': ...}``."""
    num_blocks = len({k.split(".")[3] for k in model_state if k.startswith("generator.encoder.blocks.")})
    gen = _export(model_state, _generator_rules(num_blocks), "generator.")
    gen.update(_published_buffers(list(gen), "enc.net_app.convs."))
    if not extras:
        # the published forward never reads to_rgb1; zeros keep the format loadable by the published code
        channels = model_state["generator.synthesis.const_input"].shape[1]
        extras = {
            "dec.to_rgb1.bias": torch.zeros(1, 3, 1, 1),
            "dec.to_rgb1.conv.0.weight": torch.zeros(3, channels, 1, 1),
            "dec.to_rgb1.conv.1.bias": torch.zeros(1, 3, 1, 1),
        }
    gen.update(extras)
    result = {"gen": gen}
    if any(k.startswith("discriminator.") for k in model_state):
        dis = _export(model_state, _discriminator_rules(), "discriminator.")
        dis.update(_published_buffers(list(dis), "convs."))
        result["dis"] = dis
    return result
