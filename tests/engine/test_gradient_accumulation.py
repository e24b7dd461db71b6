"""mmengine's ``accumulative_counts`` in the GAN step: 2 x 16 trains as one batch of 32.

"As one batch of 32" with the paper's per-step semantics: the generator and the discriminator each step
once per accumulated batch; in the generator's losses of both halves the discriminator is the one before
its step; the discriminator's step sees the reconstructions of the generator before its step; the lazy
R1 counts steps, not halves. Each loss is a mean over the batch, and mmengine divides each half's loss
by 2, so the two halves' gradients add up to the gradient of the mean over 32: the same up to float32
rounding. The discriminator's minibatch standard deviation is computed over groups of 4 samples of the
batch it sees, so the batch of 32 is ordered to make its groups those of the halves (:func:`as_halves`).
"""

import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from training_helpers import REPO, tiny_options

import lmtk.engine  # noqa: F401 - registers the optimizer constructor
from lmtk.config_file import read_config
from lmtk.engine import LMTKRunner
from lmtk.registry import build

pytestmark = pytest.mark.usefixtures("one_thread")

LOSSES = ("loss_l1", "loss_perceptual", "loss_adv", "loss_d_real", "loss_d_fake", "loss_r1")


def tiny_training_model(dtype=torch.float32):
    cfg = read_config(REPO / "configs/lia/lia_vox_m20.py")
    model_cfg = cfg.model.to_dict()
    model_cfg.update(size=32, latent_dim=32, channel_base=256, max_channels=32)
    model_cfg["motion_basis"]["num_directions"] = 5
    model_cfg["loss"].update(r1_weight=1.0, r1_interval=2)  # R1 at the first step, not at the second
    model_cfg["loss"]["perceptual"].update(pretrained=False, scales=(1, 0.5))
    torch.manual_seed(0)
    return build(model_cfg).train().to(dtype), cfg.optim_wrapper.to_dict()


def as_halves(batch: torch.Tensor) -> torch.Tensor:
    """``batch`` (32 samples) ordered so that its minibatch-stddev groups (sample ``i`` in group ``i % 8``)
    are those of its two halves of 16 (sample ``i`` of a half in group ``i % 4``)."""
    order = [s + 4 * k if s < 4 else 16 + (s - 4) + 4 * k for k in range(4) for s in range(8)]
    return batch[order]


def train(model, optim_cfg: dict, batches: list[dict]) -> tuple[list[dict], dict]:
    """Call ``train_step`` on each batch; the log values and, per network, the gradients of each step."""
    wrapper = build_optim_wrapper(model, optim_cfg)
    names = {id(p): name for name, p in model.named_parameters()}
    steps = {network: [] for network in wrapper.keys()}
    for network, each in wrapper.items():

        def record(optimizer, args, kwargs, network=network):
            grads = {names[id(p)]: p.grad.clone() for g in optimizer.param_groups for p in g["params"]}
            steps[network].append(grads)

        each.optimizer.register_step_pre_hook(record)
    logs = [{k: float(v.detach()) for k, v in model.train_step(batch, wrapper).items()} for batch in batches]
    return logs, steps


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


# float32: one step (the worst errors measured: 1.1e-5 in a gradient, 7.6e-6 in the weights after). Beyond it the paper's Adam (beta1 = 0)
# steps about lr * sign(gradient) at first, so a gradient element near 0 may round to the other sign and
# the next step differ by far more than rounding: float64 shows that two steps are the same (3.1e-14).
@pytest.mark.parametrize("dtype, steps, bar", [(torch.float32, 1, 5e-5), (torch.float64, 2, 1e-10)])
def test_two_accumulated_halves_train_as_one_batch_of_32(dtype, steps, bar):
    model, optim_cfg = tiny_training_model(dtype)
    generator = torch.Generator().manual_seed(1)
    images = [torch.rand(32, 3, 32, 32, generator=generator, dtype=dtype) * 2 - 1 for _ in range(2 * steps)]
    batches = [dict(source=images[2 * s], driving=images[2 * s + 1]) for s in range(steps)]
    whole = [{k: as_halves(v) for k, v in batch.items()} for batch in batches]
    halves = [
        {k: v[half] for k, v in batch.items()} for batch in batches for half in (slice(16), slice(16, 32))
    ]

    accumulating = copy.deepcopy(model)
    whole_logs, whole_steps = train(model, optim_cfg, whole)
    accumulated = {
        k: {**v, "accumulative_counts": 2} if isinstance(v, dict) else v for k, v in optim_cfg.items()
    }
    half_logs, half_steps = train(accumulating, accumulated, halves)

    # each network stepped once per batch of 32; the lazy R1 ran in both halves of the first step only
    assert {network: len(each) for network, each in half_steps.items()} == {
        "generator": steps,
        "discriminator": steps,
    }
    assert int(accumulating.train_steps) == int(model.train_steps) == steps
    stepped_and_r1 = [(False, True), (True, True), (False, False), (True, False)][: 2 * steps]
    assert [("grad_norm_g" in log, "loss_r1" in log) for log in half_logs] == stepped_and_r1
    assert ["loss_r1" in log for log in whole_logs] == [True, False][:steps]

    errors = {}
    for step in range(steps):
        for key in LOSSES:  # each half logs its own mean: the two average to the batch's
            if key in whole_logs[step]:
                mean = (half_logs[2 * step][key] + half_logs[2 * step + 1][key]) / 2
                errors[f"step {step} {key}"] = abs(mean - whole_logs[step][key]) / abs(whole_logs[step][key])
        for network, each in whole_steps.items():  # the gradients each optimizer stepped with
            for name, grad in each[step].items():
                errors[f"step {step} gradient of {name}"] = relative_error(
                    half_steps[network][step][name], grad
                )
    after = dict(model.named_parameters())
    for name, parameter in accumulating.named_parameters():
        errors[f"weights after of {name}"] = relative_error(parameter.detach(), after[name].detach())
    worst = max(errors, key=errors.get)
    assert errors[worst] < bar, (worst, errors[worst])


def test_the_networks_must_accumulate_alike():
    model, optim_cfg = tiny_training_model()
    optim_cfg["generator"]["accumulative_counts"] = 2
    with pytest.raises(
        ValueError,
        match=r"optim_wrapper.generator.accumulative_counts=2 but "
        r"optim_wrapper.discriminator.accumulative_counts=1: the networks step together",
    ):
        build_optim_wrapper(model, optim_cfg)


class RecordSteps(Hook):
    """Whether the generator's weights changed in each iteration, and the iteration's log keys."""

    def __init__(self) -> None:
        self.changed, self.logged = [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before = [p.detach().clone() for p in runner.model.generator.parameters()]

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        after = list(runner.model.generator.parameters())
        self.changed.append(any(not torch.equal(a, b) for a, b in zip(self.before, after, strict=True)))
        self.logged.append("grad_norm_g" in outputs)


def test_a_config_accumulative_counts_steps_every_second_iteration(video_root, tmp_path):
    cfg = Config.fromfile(str(REPO / "configs/lia/lia_vox_m20.py"))
    cfg.merge_from_dict(tiny_options(video_root, tmp_path, max_iters=5))
    for network in ("generator", "discriminator"):
        cfg.optim_wrapper[network]["accumulative_counts"] = 2
    cfg.experiment_name = "accumulating"
    runner = LMTKRunner.from_cfg(cfg)
    record = RecordSteps()
    runner.register_hook(record)
    runner.train()
    # the fifth iteration is the last of the run: mmengine steps with what it has (one batch, not halved)
    assert record.changed == record.logged == [False, True, False, True, True]
    assert int(runner.model.train_steps) == 3
