"""The published LIA-X checkpoint (``lia-x.pt``): its keys, mapped onto :class:`~lmtk.models.liax.LIAX`.

``lia-x.pt`` is a bare generator ``state_dict`` (``enc.enc_2r.*``, ``enc.enc_r2t.*``, ``dec.*``), not
LIA's ``{'gen': ..., 'dis': ...}``. The decoder names its stages ``512`` (the 8 px one), then ``2``,
``3``...; the encoder wraps its blocks in a one-element ``Sequential`` (``block2.0.*``) except the last
(``block_512``). The constant FIR kernels (``*.kernel``) are ignored on load and rebuilt on export.
Reading and writing files is :mod:`lmtk.checkpoint`'s; this module only renames tensors (the rule
machinery, shared with LIA's :mod:`.lia_keys`: :mod:`.key_rules`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..checkpoint import CheckpointError
from .key_rules import BUFFER_KEYS, SAME, Rule, check_mapped, fir_buffers, map_keys
from .lia_keys import FLOW_HEAD_RULES, conv_layer_rules, res_block_rules, rgb_head_rules, styled_conv_rules

__all__ = ["from_liax", "is_liax_state_dict", "liax_model_config", "to_liax"]

# LIA's layers, their activation biases stored as (C,)
_CONV_LAYER = conv_layer_rules(act_bias=SAME)
_ENCODER_BLOCK = res_block_rules(act_bias=SAME)
_STYLED = styled_conv_rules(act_bias=SAME, noise=False)
_FLOW_BLOCK = [
    ("gamma", "gamma", SAME),
    ("norm.weight", "norm.weight", SAME),
    ("norm.bias", "norm.bias", SAME),
    *((f"conv1.{p}", f"conv1.{t}", f) for p, t, f in _STYLED),
    *((f"conv2.{p}", f"conv2.{t}", f) for p, t, f in _STYLED),
]
_REFINE_BLOCK = [(f"conv{i}.{p}", f"conv{i}.{t}", f) for i in (1, 2) for p, t, f in _CONV_LAYER]
_RGB_HEAD = rgb_head_rules(act_bias=SAME)


def _stage_name(stage: int) -> str:
    return "_512" if stage == 0 else str(stage + 1)


def _encoder_block_name(block: int, num_blocks: int) -> str:
    return "block_512" if block == num_blocks - 1 else f"block{block + 2}.0"


def _rules(num_blocks: int) -> list[Rule]:
    """Published template -> lmtk template for an encoder of ``num_blocks`` blocks (as many stages)."""
    rules = [(f"enc.enc_2r.block1.{p}", f"encoder.stem.{t}", f) for p, t, f in _CONV_LAYER]
    for b in range(num_blocks):
        name = _encoder_block_name(b, num_blocks)
        rules += [(f"enc.enc_2r.{name}.{p}", f"encoder.blocks.{b}.{t}", f) for p, t, f in _ENCODER_BLOCK]
    rules += [
        ("enc.enc_2r.block8.weight", "encoder.to_code.weight", SAME),
        ("enc.enc_r2t.{b}.weight", "motion_mlp.layers.{b}.weight", SAME),
        ("enc.enc_r2t.{b}.bias", "motion_mlp.layers.{b}.bias", SAME),
        ("dec.direction.weight", "motion_basis.weight", SAME),
        ("dec.input.input", "synthesis.const_input", SAME),
    ]
    rules += [(f"dec.conv1.{p}", f"synthesis.conv1.{t}", f) for p, t, f in _STYLED]
    for s in range(num_blocks):  # one stage per feature map: the stem and every block but the last
        name, stage = _stage_name(s), f"synthesis.stages.{s}"
        rules += [(f"dec.conv{name}_1.{p}", f"{stage}.conv_up.{t}", f) for p, t, f in _STYLED]
        rules += [
            (f"dec.conv{name}_2.{{b}}.{p}", f"{stage}.flow_blocks.{{b}}.{t}", f) for p, t, f in _FLOW_BLOCK
        ]
        rules += [
            (f"dec.conv{name}_2_up.1.weight", f"{stage}.refine_up.conv.conv.weight", SAME),
            (f"dec.conv{name}_2_up.2.bias", f"{stage}.refine_up.conv.act.bias", SAME),
        ]
        rules += [
            (f"dec.conv{name}_2_rgb.{{b}}.{p}", f"{stage}.refine.{{b}}.{t}", f) for p, t, f in _REFINE_BLOCK
        ]
        rules += [(f"dec.flow{name}.{p}", f"{stage}.to_flow.{t}", f) for p, t, f in FLOW_HEAD_RULES]
        rules += [(f"dec.rgb{name}.{p}", f"{stage}.to_rgb.{t}", f) for p, t, f in _RGB_HEAD]
    return rules


_ENCODER_BLOCK_KEY = re.compile(r"enc\.enc_2r\.(block\d+\.0|block_512)\.conv1\.0\.weight")


def is_liax_state_dict(state: object) -> bool:
    """True for a published LIA-X generator ``state_dict`` (keys ``enc.enc_2r.*``)."""
    return (
        isinstance(state, Mapping)
        and any(str(k).startswith("enc.enc_2r.") for k in state)
        and all(torch.is_tensor(v) for v in state.values())
    )


def _num_blocks(state: Mapping) -> int:
    return sum(1 for k in state if _ENCODER_BLOCK_KEY.fullmatch(k))


def liax_model_config(state: Mapping[str, torch.Tensor]) -> dict:
    """The lmtk model config of a LIA-X state dict, inferred from its tensor shapes."""
    try:
        num_blocks = _num_blocks(state)
        size = 2 ** (num_blocks + 2)
        latent_dim = state["enc.enc_2r.block8.weight"].shape[0]
        num_directions = state["dec.direction.weight"].shape[1]
        finest = state["enc.enc_2r.block1.0.weight"].shape[0]
        coarsest = state["dec.input.input"].shape[1]
        motion_layers = len({k.split(".")[2] for k in state if k.startswith("enc.enc_r2t.")})
        flow_blocks = len({k.split(".")[2] for k in state if k.startswith("dec.conv_512_2.")})
        refine_blocks = len({k.split(".")[2] for k in state if k.startswith("dec.conv_512_2_rgb.")})
        groups = 32 if "dec.conv_512_2.0.norm.weight" in state else None
    except (KeyError, IndexError) as error:
        raise CheckpointError(f"not a complete LIA-X generator: missing {error}") from error
    if num_blocks < 2 or groups is None:
        raise CheckpointError("not a complete LIA-X generator: its encoder or decoder blocks are missing")
    shape = dict(size=size, channel_base=finest * size, max_channels=coarsest)
    return dict(
        type="lmtk.LIAX.v2",
        encoder=dict(type="lmtk.LIAEncoder.v1", latent_dim=latent_dim, widen_first=True, **shape),
        synthesis=dict(
            type="lmtk.LIAXGenerator.v1",
            latent_dim=latent_dim,
            warper=dict(type="lmtk.FlowWarper.v1", align_corners=True),
            num_flow_blocks=flow_blocks,
            num_refine_blocks=refine_blocks,
            norm_groups=min(groups, coarsest, finest),
            **shape,
        ),
        motion_basis=dict(
            type="lmtk.GramSchmidtBasis.v1", latent_dim=latent_dim, num_directions=num_directions
        ),
        motion_mlp_layers=motion_layers,
        discriminator=None,
    )


def from_liax(state: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]) -> dict:
    """A LIA-X state dict as an lmtk ``state_dict`` of ``model_state``'s model, checked key by key."""
    weights = {k: v for k, v in state.items() if not BUFFER_KEYS.fullmatch(k)}
    mapped, unknown = map_keys(weights, _rules(_num_blocks(state)), to_lmtk=True)
    if unknown:
        raise CheckpointError(f"unknown key(s) in the LIA-X checkpoint: {', '.join(unknown[:5])}")
    result = {f"generator.{k}": v for k, v in mapped.items()}
    expected = {k: v for k, v in model_state.items() if k.startswith("generator.")}
    check_mapped(result, expected, "LIA-X checkpoint")
    return result


def to_liax(model_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An lmtk LIA-X ``state_dict()`` as the published bare state dict, FIR kernels included."""
    local = {k[len("generator.") :]: v for k, v in model_state.items() if k.startswith("generator.")}
    num_blocks = len({k.split(".")[2] for k in local if k.startswith("encoder.blocks.")})
    mapped, unknown = map_keys(local, _rules(num_blocks), to_lmtk=False)
    if unknown:
        raise CheckpointError(f"generator.{unknown[0]} has no counterpart in the LIA-X format")
    down, up = fir_buffers()
    for b in range(num_blocks):
        name = _encoder_block_name(b, num_blocks)
        mapped[f"enc.enc_2r.{name}.conv2.0.kernel"] = down.clone()
        mapped[f"enc.enc_2r.{name}.skip.0.kernel"] = down.clone()
    for s in range(num_blocks):
        name = _stage_name(s)
        mapped[f"dec.conv{name}_1.conv.blur.kernel"] = up.clone()
        mapped[f"dec.rgb{name}.up.kernel"] = up.clone()
        mapped[f"dec.flow{name}.up.kernel"] = up.clone()
        if s:
            mapped[f"dec.conv{name}_2_up.0.kernel"] = up.clone()
    return mapped
