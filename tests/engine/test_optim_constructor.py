"""LIAOptimWrapperConstructor: one optimizer per network, paramwise settings at the top or per network."""

from mmengine.optim import build_optim_wrapper
from torch import nn

import lmtk.engine  # noqa: F401 - registers the optimizer constructor


class TwoNetworks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Linear(2, 2)
        self.discriminator = nn.Linear(2, 2)


def rates(wrapper) -> list[float]:
    return sorted(group["lr"] for group in wrapper.optimizer.param_groups)


def test_top_level_paramwise_cfg_is_each_network_default():
    cfg = dict(
        constructor="LIAOptimWrapperConstructor",
        paramwise_cfg=dict(custom_keys={"bias": dict(lr_mult=0.0)}),
        generator=dict(optimizer=dict(type="Adam", lr=0.002)),
        discriminator=dict(
            optimizer=dict(type="Adam", lr=0.002),
            paramwise_cfg=dict(custom_keys={"weight": dict(lr_mult=0.5)}),  # this network's own wins
        ),
    )
    wrappers = build_optim_wrapper(TwoNetworks(), cfg)
    assert rates(wrappers["generator"]) == [0.0, 0.002]
    assert rates(wrappers["discriminator"]) == [0.001, 0.002]


def test_the_constructor_can_be_called_again():
    from lmtk.engine.optim_constructor import LIAOptimWrapperConstructor

    constructor = LIAOptimWrapperConstructor(
        dict(generator=dict(optimizer=dict(type="Adam", lr=0.002), paramwise_cfg=dict(bias_lr_mult=0.0))),
    )
    model = TwoNetworks()
    assert rates(constructor(model)["generator"]) == rates(constructor(model)["generator"]) == [0.0, 0.002]
