"""One float64 training step of the paper config reproduces the published trainer's step.

The fixture (``../shared/conformance/train_step/``; its README says how it was made) holds what one step of
the published training code computed from weights and VGG19 weights built by rule: the losses, the
reconstruction, and for every parameter the norm and a probe dot product of its weights before, its
gradient, its weights after and its update. Here the same step runs through lmtk: the model, loss weights,
VGG layers and optimizers of ``configs/lia/lia_vox_m20.py``, and ``LIA.train_step``. The bars are the
README's; a changed loss weight, VGG layer, Adam beta or update order breaks them.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from conformance_rules import conformance_state, seeded_randn
from mmengine.optim import build_optim_wrapper

import lmtk
import lmtk.engine  # noqa: F401 - registers the optimizer constructor
from lmtk.config_file import read_config
from lmtk.models.lia_keys import to_published

REPO = Path(__file__).resolve().parents[2]
PAPER_CONFIG = REPO / "configs" / "lia" / "lia_vox_m20.py"

# the README's bars ("Comparing, and the bars"); never loosen one to let a change pass
BARS = {
    "losses": 1e-6,
    "reconstruction": 1e-10,
    "optimizer hyperparameters": 1e-12,
    "weights before": 1e-12,
    "gradients": 1e-5,
    "weights after": 1e-5,
    "update norms": 1e-5,
    "update probes": 1e-3,
    "update vs Adam's first step": 1e-10,
}
LOSSES = {  # the published name: lmtk's log name
    "loss_l1": "loss_l1",
    "loss_vgg": "loss_perceptual",
    "loss_gan_g": "loss_adv",
    "loss_d_real": "loss_d_real",
    "loss_d_fake": "loss_d_fake",
    "loss_d": "loss_d",
}
NETWORKS = {"generator": "gen", "discriminator": "dis"}

pytestmark = pytest.mark.usefixtures("one_thread")


def vgg19_rule_weights(keys_file: Path) -> dict:
    """``torchvision.models.vgg19().features`` weights by the README's rule: fan-in scaled normals, zero biases."""
    state = {}
    for entry in json.loads(keys_file.read_text())["vgg19_features"]:
        key, shape = entry["key"], entry["shape"]
        if key.endswith("bias"):
            state[key] = torch.zeros(shape)
        else:
            state[key] = seeded_randn(shape, f"vgg19.{key}") * math.sqrt(2 / (shape[1] * shape[2] * shape[3]))
    return state


def published_layout(model, state: dict, extras_value: float | None = None) -> dict:
    """An lmtk state dict in the published names and layouts, float64: ``{"generator": {key: tensor}, ...}``.

    ``extras_value`` fills the tensors lmtk carries outside the model (``dec.to_rgb1.*``, never used)
    for a state that holds gradients (0) or flags instead of weights.
    """
    extras = model.published_extras
    if extras_value is not None:
        extras = {k: torch.full_like(v, extras_value) for k, v in extras.items()}
    published = to_published(state, extras)
    return {
        network: {k: v.double() for k, v in published[short].items()} for network, short in NETWORKS.items()
    }


def run_paper_step(conformance_dir: Path, work_dir: Path, source, target) -> dict:
    """One ``train_step`` of the paper config's model and optimizers in float64, from the rule weights."""
    cfg = read_config(PAPER_CONFIG)
    vgg_path, published_path = work_dir / "vgg19_rule.pth", work_dir / "published_rule.pt"
    torch.save(vgg19_rule_weights(conformance_dir / "train_step" / "train_step_keys.json"), vgg_path)
    published = {short: conformance_state(conformance_dir, network) for network, short in NETWORKS.items()}
    torch.save(published, published_path)
    model_cfg = cfg.model.to_dict()
    model_cfg["loss"]["perceptual"].update(pretrained=False, weights_path=str(vgg_path))
    model = lmtk.load_model(published_path, config=model_cfg, with_loss=True).double().train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    names = {id(p): name for name, p in model.named_parameters()}
    grads, optimized = {}, set()

    def record_gradients(optimizer, args, kwargs):  # lmtk zeroes the gradients after its step
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                optimized.add(names[id(parameter)])
                if parameter.grad is not None:
                    grads[names[id(parameter)]] = parameter.grad.detach().clone()

    for wrapper in optim_wrapper.values():
        wrapper.optimizer.register_step_pre_hook(record_gradients)
    reconstructions = []
    model.generator.register_forward_hook(
        lambda module, args, output: reconstructions.append(output.detach())
    )

    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    log_vars = model.train_step(dict(source=source, driving=target), optim_wrapper)
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def flags(chosen: set) -> dict:
        flagged = {k: torch.full_like(v, float(k in chosen)) for k, v in before.items()}
        layout = published_layout(model, flagged, extras_value=0.0)
        return {network: {k for k, v in state.items() if bool(v.all())} for network, state in layout.items()}

    optimizers = {}
    for network, wrapper in optim_wrapper.items():
        (group,) = wrapper.optimizer.param_groups
        optimizers[network] = dict(
            lr=group["lr"],
            beta1=group["betas"][0],
            beta2=group["betas"][1],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            amsgrad=group["amsgrad"],
        )
    assert len(reconstructions) == 1, "the step must run the generator once"
    return dict(
        losses={name: float(log_vars[ours].detach()) for name, ours in LOSSES.items()},
        reconstruction=reconstructions[0],
        optimizers=optimizers,
        optimized=flags(optimized),
        has_grad=flags(set(grads)),
        before=published_layout(model, before),
        grad=published_layout(model, {k: grads.get(k, torch.zeros_like(v)) for k, v in before.items()}, 0.0),
        after=published_layout(model, after),
    )


def compare(step: dict, fixture: dict, conformance_dir: Path) -> tuple[dict, list]:
    """The worst relative error of each figure (with where it is), and the exact checks that failed."""
    worst = {figure: (0.0, "") for figure in BARS}
    mismatches = []

    def note(figure: str, error: float, where: str) -> None:
        if not error <= worst[figure][0]:  # NaN counts as the worst
            worst[figure] = (error, where)

    for name, value in step["losses"].items():
        note("losses", abs(value - fixture[name]) / abs(fixture[name]), name)
    reconstruction = fixture["recon"]
    note(
        "reconstruction",
        float((step["reconstruction"] - reconstruction).norm() / reconstruction.norm()),
        "recon",
    )

    buffers = json.loads((conformance_dir / "official_keys.json").read_text())
    for network, short in NETWORKS.items():
        settings, ours = fixture[f"{short[0]}_optim"], step["optimizers"][network]
        for name, value in ours.items():
            note(
                "optimizer hyperparameters",
                abs(float(value) - float(settings[name])) / max(abs(settings[name]), 1e-300),
                f"{network} {name}",
            )
        entries = fixture[network]
        buffer_keys = {e["key"] for e in buffers[network] if e["kind"] == "buffer"}
        keys = set(step["before"][network]) - buffer_keys
        if keys != set(entries):
            mismatches.append(f"{network} keys differ: {sorted(keys ^ set(entries))[:5]}")
            continue
        expected_grad = {k for k, e in entries.items() if e["has_grad"]}
        if step["has_grad"][network] - buffer_keys != expected_grad:
            mismatches.append(
                f"{network} has_grad differs: {sorted(step['has_grad'][network] ^ expected_grad)[:5]}"
            )
        optimized = step["optimized"][network] - buffer_keys
        if optimized != expected_grad:  # lmtk optimizes exactly the tensors the published step changes
            mismatches.append(f"{network} optimizer holds {sorted(optimized ^ expected_grad)[:5]}")
        lr, beta2, eps = settings["lr"], settings["beta2"], settings["eps"]
        for key, entry in entries.items():
            before, after, grad = (step[part][network][key] for part in ("before", "after", "grad"))
            if list(before.shape) != entry["shape"]:
                mismatches.append(f"{network} {key} has shape {list(before.shape)}, not {entry['shape']}")
                continue
            update = after - before
            probe = seeded_randn(entry["shape"], f"probe.{key}").double()
            figures = [("weights before", "before", before), ("weights after", "after", after)]
            if entry["has_grad"]:
                figures += [("gradients", "grad", grad), ("update norms", "update", update)]
                # Adam's first step with beta1 = 0 from this implementation's own gradient (README, item 3)
                adam = -lr * grad / ((1 - beta2) * grad * grad).sqrt().div(math.sqrt(1 - beta2)).add(eps)
                note(
                    "update vs Adam's first step",
                    float((update - adam).norm() / adam.norm()),
                    f"{network} {key}",
                )
            elif not torch.equal(before, after) or bool(grad.any()):
                mismatches.append(f"{network} {key} gets no gradient in the published step but changed")
            for figure, part, tensor in figures:
                scale = entry[f"{part}_norm"]
                where = f"{network} {key} ({part})"
                note(figure, abs(float(tensor.norm()) - scale) / scale, where)
                probe_figure = "update probes" if part == "update" else figure
                note(probe_figure, abs(float((tensor * probe).sum()) - entry[f"{part}_probe"]) / scale, where)
    return worst, mismatches


@pytest.mark.slow(minutes=3)
def test_a_float64_step_of_the_paper_config_matches_the_published_step(conformance_dir, tmp_path):
    folder = conformance_dir / "train_step"
    if not (folder / "train_step_fixture.pt").is_file():
        pytest.skip(f"training-step fixture not found in {folder}")
    fixture = torch.load(folder / "train_step_fixture.pt", weights_only=True)
    assert fixture["format"] == "lia-train-step-fixture/1"
    step = run_paper_step(conformance_dir, tmp_path, fixture["source"], fixture["target"])
    worst, mismatches = compare(step, fixture, conformance_dir)
    report = "\n".join(
        f"{figure}: {error:.2e} (bar {BARS[figure]:.0e}) at {where}"
        for figure, (error, where) in worst.items()
    )
    print(report)
    over = [figure for figure, (error, _) in worst.items() if not error <= BARS[figure]]
    assert not mismatches and not over, "\n".join([*mismatches, f"over the bar: {over}", report])
