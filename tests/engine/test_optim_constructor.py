"""LIAOptimWrapperConstructor: one optimizer per network, paramwise settings at the top or per network."""

import numpy as np
import pytest
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


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(optimizer=dict(type="Adam", lr="1e-3")), "optimizer.lr must be a number, got '1e-3'"),
        (dict(optimizer=dict(type="Adamm", lr=0.1)), "unknown optimizer type 'Adamm' (did you mean 'Adam'"),
        (dict(optimizer=dict(type="Adam", lr=0.1, betas=[0.5])), "betas must be 2 numbers"),
        (dict(optimizer=dict(type="Adam", lr=0.1, amsgrad=1)), "amsgrad must be True or False"),
        (dict(optimizer=dict(type="SGD", lr=0.1, betas=(0.0, 0.9))), "SGD takes no option 'betas'"),
        (dict(type="OptimWraper", optimizer=dict(type="Adam", lr=0.1)), "unknown optim wrapper type"),
        (dict(optimizer=dict(type="Adam", lr=0.1), reg_interval=0), "reg_interval must be a positive int"),
        (dict(optimizer=dict(type="Adam"), reg_interval=4), "set optimizer.lr as well"),
        (dict(lr=0.1), "must be a dict with an 'optimizer' dict"),
    ],
)
def test_a_wrong_optimizer_setting_is_one_error_naming_it(change, message):
    cfg = dict(constructor="LIAOptimWrapperConstructor", generator=change)
    with pytest.raises(ValueError) as error:
        build_optim_wrapper(TwoNetworks(), cfg)
    assert message in str(error.value)
    assert str(error.value).startswith("optim_wrapper.generator")


def test_numbers_of_any_kind_are_accepted():
    cfg = dict(
        constructor="LIAOptimWrapperConstructor",
        generator=dict(
            optimizer=dict(type="Adam", lr=np.float32(0.5), betas=[0, 0.99], weight_decay=1), reg_interval=4
        ),
    )
    wrapper = build_optim_wrapper(TwoNetworks(), cfg)["generator"]
    assert rates(wrapper) == [pytest.approx(0.4)]
