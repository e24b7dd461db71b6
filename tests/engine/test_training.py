"""Training on mmengine's Runner: finite losses, exact resume, atomic checkpoints, sample grids."""

import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from training_helpers import REPO, Interrupted, tiny_options

import lmtk.engine  # noqa: F401 - registers hooks and the optimizer constructor
from lmtk.engine import AtomicCheckpointHook, LMTKRunner, resolve_max_iters
from lmtk.fast_paths import FastPaths


@HOOKS.register_module(force=True)
class RecordLosses(Hook):
    def __init__(self) -> None:
        self.records = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.records.append({k: float(v) for k, v in outputs.items()})


def make_runner(video_root, work_dir, name, max_iters=4, resume=False, extra_hooks=(), options=None):
    cfg = Config.fromfile(str(REPO / "configs/lia/lia_vox_m20.py"))
    cfg.merge_from_dict({**tiny_options(video_root, work_dir, max_iters), **(options or {})})
    cfg.custom_hooks = list(cfg.custom_hooks) + list(extra_hooks)
    cfg.experiment_name = name
    cfg.resume = resume
    resolve_max_iters(cfg)  # as tools/train.py builds the config
    return LMTKRunner.from_cfg(cfg)


def final_weights(runner) -> dict:
    model = getattr(runner.model, "module", runner.model)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_losses_are_finite_and_logged(video_root, tmp_path):
    runner = make_runner(video_root, tmp_path, "finite", max_iters=2)
    recorder = RecordLosses()
    runner.register_hook(recorder)
    runner.train()
    assert len(recorder.records) == 2
    for record in recorder.records:
        for key in (
            "loss_l1",
            "loss_perceptual",
            "loss_adv",
            "loss_d_real",
            "loss_d_fake",
            "grad_norm_g",
            "grad_norm_d",
        ):
            assert key in record and torch.isfinite(torch.tensor(record[key])), (key, record)
    assert (tmp_path / "samples").is_dir() and any((tmp_path / "samples").glob("*.png"))


def test_interrupted_and_resumed_run_matches_uninterrupted(video_root, tmp_path):
    straight = make_runner(video_root, tmp_path / "straight", "straight", max_iters=4)
    straight.train()
    expected = final_weights(straight)

    interrupted = make_runner(
        video_root,
        tmp_path / "resumed",
        "interrupted",
        max_iters=4,
        extra_hooks=[dict(type="InterruptAtIter", at=3)],
    )
    with pytest.raises(Interrupted):
        interrupted.train()
    assert (tmp_path / "resumed" / "iter_2.pth").is_file() and not (
        tmp_path / "resumed" / "iter_4.pth"
    ).exists()

    resumed = make_runner(video_root, tmp_path / "resumed", "resumed", max_iters=4, resume=True)
    resumed.train()
    assert resumed.iter == 4
    actual = final_weights(resumed)
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key
    # the optimizers were restored too: both runs' Adam states agree
    assert resumed.optim_wrapper["generator"].optimizer.state_dict()["state"].keys() == (
        straight.optim_wrapper["generator"].optimizer.state_dict()["state"].keys()
    )


def test_checkpoint_is_never_partial(video_root, tmp_path, monkeypatch):
    from mmengine.fileio.backends.local_backend import LocalBackend

    runner = make_runner(video_root, tmp_path, "atomic", max_iters=4)
    real_put = LocalBackend.put
    calls = {"n": 0}

    def dying_put(self, obj, filepath):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint dies half-written
            real_put(self, obj[: len(obj) // 2], filepath)
            raise OSError("disk full")
        return real_put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, "put", dying_put)
    with pytest.raises(OSError, match="disk full"):
        runner.train()
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file() and ".pth" in p.name)
    assert files == ["iter_2.pth"], files
    last = (tmp_path / "last_checkpoint").read_text().strip()
    assert last.endswith("iter_2.pth")
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert "state_dict" in state and state["meta"]["iter"] == 2


def dying_second_write(monkeypatch) -> None:
    """The second checkpoint write fails half-way, as on a full disk."""
    from mmengine.fileio.backends.local_backend import LocalBackend

    real_put = LocalBackend.put
    calls = {"n": 0}

    def dying_put(self, obj, filepath):
        calls["n"] += 1
        if calls["n"] == 2:
            real_put(self, obj[: len(obj) // 2], filepath)
            raise OSError("disk full")
        return real_put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, "put", dying_put)


def checkpoint_files(folder) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.pth*") if p.is_file())


def test_a_failed_write_keeps_the_only_checkpoint(video_root, tmp_path, monkeypatch):
    """With ``max_keep_ckpts=1`` the old checkpoint goes only once the new one is in place."""
    runner = make_runner(
        video_root, tmp_path, "keep1", options={"default_hooks.checkpoint.max_keep_ckpts": 1}
    )
    dying_second_write(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        runner.train()
    assert checkpoint_files(tmp_path) == ["iter_2.pth"]
    last = (tmp_path / "last_checkpoint").read_text().strip()
    assert last == str(tmp_path / "iter_2.pth")
    assert torch.load(last, map_location="cpu", weights_only=False)["meta"]["iter"] == 2


@pytest.mark.parametrize("template", ["iter_{}.pth", "latest.pth"])
def test_max_keep_ckpts_removes_the_old_checkpoint_after_the_new_one(video_root, tmp_path, template):
    runner = make_runner(
        video_root,
        tmp_path,
        "keep1ok",
        options={
            "default_hooks.checkpoint.max_keep_ckpts": 1,
            "default_hooks.checkpoint.filename_tmpl": template,
        },
    )
    runner.train()
    name = template.format(4)
    assert checkpoint_files(tmp_path) == [name]
    assert (tmp_path / "last_checkpoint").read_text().strip() == str(tmp_path / name)
    assert torch.load(tmp_path / name, map_location="cpu", weights_only=False)["meta"]["iter"] == 4


def test_checkpoint_template_with_a_folder(video_root, tmp_path):
    runner = make_runner(
        video_root,
        tmp_path,
        "subfolder",
        max_iters=2,
        options={"default_hooks.checkpoint.filename_tmpl": "ckpt/iter_{}.pth"},
    )
    runner.train()
    assert checkpoint_files(tmp_path) == ["ckpt/iter_2.pth"]
    assert (tmp_path / "last_checkpoint").read_text().strip() == str(tmp_path / "ckpt" / "iter_2.pth")


def test_only_the_main_process_renames_the_checkpoint(video_root, tmp_path):
    from unittest import mock

    runner = make_runner(video_root, tmp_path, "ranks", max_iters=1)
    runner.train()
    (hook,) = [h for h in runner.hooks if isinstance(h, AtomicCheckpointHook)]
    partial = tmp_path / ".iter_9.pth.partial"
    partial.write_bytes(b"half a checkpoint")  # the main process is still writing it
    with mock.patch("mmengine.dist.utils.get_rank", return_value=1):
        hook._save_checkpoint_with_step(runner, 9, dict(epoch=0, iter=9))
    assert partial.read_bytes() == b"half a checkpoint" and not (tmp_path / "iter_9.pth").exists()
    assert (tmp_path / "last_checkpoint").read_text().strip().endswith("iter_1.pth")


@pytest.mark.slow
def test_two_gloo_processes_keep_identical_weights(video_root, tmp_path):
    config = tmp_path / "ddp.py"
    config.write_text(
        f"_base_ = {str(REPO / 'configs/lia/lia_vox_m20.py')!r}\n"
        "custom_imports = dict(imports=['weights_dump_hook'], allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='RNGStateHook'), dict(type='DumpWeightsHook', out_dir={str(tmp_path)!r})]\n"
    )
    options = [
        f"{k}={v}".replace(" ", "") for k, v in tiny_options(video_root, tmp_path, max_iters=3).items()
    ]
    options = [o for o in options if not o.startswith("custom_hooks")] + ["env_cfg.dist_cfg.backend=gloo"]
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'tests' / 'engine'}{os.pathsep}{REPO}",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517"]
    command += [str(REPO / "tools/train.py"), str(config), "--launcher", "pytorch", "--cfg-options", *options]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # the paper config's batch_size is the total over the processes (batch_size_scope="total")
    assert "batch: total 2 = 2 processes x 1" in result.stdout + result.stderr
    rank0 = torch.load(tmp_path / "weights_rank0.pt")
    rank1 = torch.load(tmp_path / "weights_rank1.pt")
    assert rank0.keys() == rank1.keys() and any(k.startswith("generator.") for k in rank0)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    initial = torch.load(tmp_path / "weights_rank0_initial.pt")
    assert any(not torch.equal(initial[k], rank0[k]) for k in rank0 if k.startswith("generator."))

    # the checkpoint holds the keys of a single-process run: it loads, and the run resumes from it
    saved = torch.load(tmp_path / "iter_3.pth", weights_only=False)["state_dict"]
    assert not [k for k in saved if ".module." in k]
    model = lmtk.load_model(tmp_path / "iter_3.pth")
    unwrapped = {k.replace(".module.", "."): v for k, v in rank0.items()}
    assert all(torch.equal(v, unwrapped[k]) for k, v in model.state_dict().items() if k in unwrapped)
    longer = [o.replace("train_cfg.max_iters=3", "train_cfg.max_iters=4") for o in options]
    resumed = [*command[: -len(options)], *longer, "--resume"]
    result = subprocess.run(resumed, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "iter_4.pth").is_file()


def test_cli_trains_on_real_clips_and_writes_grids(shared_data, tmp_path):
    options = [f"{k}={v}".replace(" ", "") for k, v in tiny_options(shared_data / "vox", tmp_path, 2).items()]
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/train.py"),
            str(REPO / "configs/lia/lia_vox_m20.py"),
            "--cfg-options",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    grids = sorted((tmp_path / "samples").glob("*.png"))
    assert grids, "no sample grid written"
    from PIL import Image

    grid = Image.open(grids[-1])
    assert grid.width > 4 * 32 and grid.height > 32  # four columns of 32 px tiles


def test_missing_config_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/train.py"), str(tmp_path / "nope.py")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "error: config not found" in result.stderr and "Traceback" not in result.stderr


class RecordGeneratorRate(Hook):
    def __init__(self, rates: list) -> None:
        self.rates = rates

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.rates.append(runner.optim_wrapper["generator"].get_lr()["lr"][0])


def test_scheduler_end_follows_max_iters(video_root, tmp_path):
    """A cosine schedule given ``end="max_iters"`` decays to zero over an overridden run length."""
    schedule = [dict(type="CosineAnnealingLR", by_epoch=False, begin=0, end="max_iters", T_max="max_iters")]
    runner = make_runner(video_root, tmp_path, "cosine", max_iters=4, options={"param_scheduler": schedule})
    rates = []
    runner.register_hook(RecordGeneratorRate(rates))
    runner.train()
    schedule = runner.param_schedulers["generator"][0]
    assert (schedule.end, schedule.T_max) == (4, 4)
    assert len(rates) == 4 and all(a > b for a, b in zip(rates, rates[1:]))


def test_resumed_schedule_follows_the_new_max_iters(video_root, tmp_path):
    """Resuming with a larger ``train_cfg.max_iters`` stretches an ``end="max_iters"`` schedule."""
    schedule = [
        dict(type="CosineAnnealingLR", by_epoch=False, begin=0, end="max_iters", T_max="max_iters"),
        dict(type="LinearLR", by_epoch=False, start_factor=1.0, end_factor=0.5, end="max_iters"),
    ]
    options = {"param_scheduler": schedule}
    make_runner(video_root, tmp_path, "short", max_iters=4, options=options).train()
    runner = make_runner(video_root, tmp_path, "longer", max_iters=8, resume=True, options=options)
    rates = []
    runner.register_hook(RecordGeneratorRate(rates))
    runner.train()
    cosine, linear = runner.param_schedulers["generator"]
    assert (cosine.end, cosine.T_max) == (8, 8)
    assert (linear.end, linear.total_iters) == (8, 7)
    assert len(rates) == 4 and all(a > b > 0 for a, b in zip(rates, rates[1:])), rates


def test_a_checkpoint_with_distributed_wrapper_keys_resumes(video_root, tmp_path):
    make_runner(video_root, tmp_path, "short", max_iters=2).train()
    path = tmp_path / "iter_2.pth"
    checkpoint = torch.load(path, weights_only=False)
    wrapped = {}  # as distributed runs used to save it: generator.module.*, discriminator.module.*
    for key, value in checkpoint["state_dict"].items():
        network, _, rest = key.partition(".")
        wrapped[f"{network}.module.{rest}" if network in ("generator", "discriminator") else key] = value
    torch.save({**checkpoint, "state_dict": wrapped}, path)
    runner = make_runner(video_root, tmp_path, "longer", max_iters=3, resume=True)
    runner.train()
    assert runner.iter == 3


def test_resuming_a_finished_run_says_there_is_nothing_to_train(video_root, tmp_path, monkeypatch):
    make_runner(video_root, tmp_path, "short", max_iters=2).train()
    runner = make_runner(video_root, tmp_path, "again", max_iters=2, resume=True)
    logged = []
    monkeypatch.setattr(
        "lmtk.engine.hooks.training_start_hook.print_log", lambda message, **kwargs: logged.append(message)
    )
    runner.train()
    assert runner.iter == 2
    assert logged == [
        "nothing to train: the run is at iteration 2 and train_cfg.max_iters is 2; raise it "
        "(--cfg-options train_cfg.max_iters=N) to train on"
    ]


def test_resuming_with_another_architecture_is_refused_before_training(video_root, tmp_path):
    make_runner(video_root, tmp_path, "m5", max_iters=2).train()
    # the weights of the other shape were skipped with a warning, then Adam failed in the first step
    runner = make_runner(
        video_root, tmp_path, "m4", max_iters=4, resume=True, options={"model.motion_basis.num_directions": 4}
    )
    with pytest.raises(
        ValueError, match=r"cannot resume from .*iter_2.pth: its model differs .*motion_basis"
    ):
        runner.train()
    assert not runner.training_started


def test_a_misspelt_checkpoint_option_is_refused_before_training(video_root, tmp_path):
    # CheckpointHook passes unknown options to save_checkpoint: "intervals" failed at the first save
    runner = make_runner(video_root, tmp_path, "typo", options={"default_hooks.checkpoint.intervals": 2})
    with pytest.raises(
        ValueError, match="default_hooks.checkpoint has no option 'intervals'; did you mean 'interval'"
    ):
        runner.train()
    assert not runner.training_started and runner.iter == 0


def test_fast_paths_from_the_config_train_and_keep_the_checkpoint_format(video_root, tmp_path):
    plain = make_runner(video_root, tmp_path / "plain", "plain", max_iters=2)
    fast = make_runner(video_root, tmp_path / "fast", "fast", max_iters=2)
    fast.cfg.fast_paths = dict(dtype="bfloat16", channels_last=True, blur="folded")
    fast = LMTKRunner.from_cfg(fast.cfg)
    recorder = RecordLosses()
    fast.register_hook(recorder)
    fast.train()
    from lmtk.fast_paths import AutocastOptimWrapper

    assert isinstance(fast.optim_wrapper["generator"], AutocastOptimWrapper)
    assert fast.optim_wrapper["discriminator"].cast_dtype == torch.bfloat16
    model = getattr(fast.model, "module", fast.model)
    assert model.net.encoder.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.net.encoder.blocks[0].conv2.blur == "folded"
    assert len(recorder.records) == 2
    assert all(torch.isfinite(torch.tensor(v)) for record in recorder.records for v in record.values())
    saved = torch.load(tmp_path / "fast" / "iter_2.pth", map_location="cpu", weights_only=False)["state_dict"]
    assert saved.keys() == final_weights(plain).keys()
    assert all(saved[k].shape == v.shape for k, v in final_weights(plain).items())


def test_train_tool_reads_fast_path_options(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import train as train_tool
    finally:
        sys.path.pop(0)
    config = str(REPO / "configs/lia/lia_vox_m20.py")
    args = train_tool.parse_args(
        [config, "--dtype", "bfloat16", "--channels-last", "--blur", "folded", "--compile"]
    )
    cfg = train_tool.build_config(args)
    assert cfg.fast_paths == dict(dtype="bfloat16", channels_last=True, blur="folded", compile="default")
    assert "fast_paths" not in train_tool.build_config(train_tool.parse_args([config]))
    fast = tmp_path / "fast.py"  # a config's fast paths, switched off on the command line
    fast.write_text(
        f"_base_ = {config!r}\nfast_paths = dict(channels_last=True, blur='separable', compile='default')\n"
    )
    cfg = train_tool.build_config(
        train_tool.parse_args([str(fast), "--no-channels-last", "--blur", "depthwise", "--no-compile"])
    )
    assert FastPaths.from_config(cfg.fast_paths) == FastPaths()
    with pytest.raises(ValueError, match="contradicts"):
        train_tool.build_config(train_tool.parse_args([config, "--amp", "--dtype", "bfloat16"]))
    # --freeze (of the inference tools) is refused with why, in one line, not as an unknown option
    with pytest.raises(SystemExit) as exit_info:
        train_tool.parse_args([config, "--freeze"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "error: --freeze is for inference only: training never freezes the weights (see --help)\n"
    )
    # edits that train but not as meant are noted: a misspelt setting, a perceptual loss on random VGG19
    edited = tmp_path / "edited.py"
    edited.write_text(
        f"_base_ = {str(REPO / 'configs/lia/lia_synthetic_m20.py')!r}\ntrain_config = dict(max_iters=3)\n"
        "model = dict(loss=dict(perceptual_weight=1.0, perceptual=dict(scales=(1.0, 0.5, 0.25))))\n"
    )
    train_tool.build_config(train_tool.parse_args([str(edited)]))
    notes = capsys.readouterr().err.splitlines()
    assert notes[0] == "note: 'train_config' is not a setting, so nothing reads it; did you mean 'train_cfg'?"
    assert notes[1].startswith("note: the perceptual loss runs VGG19 with random weights")
    train_tool.build_config(train_tool.parse_args([str(REPO / "configs/lia/lia_synthetic_m20.py")]))
    assert capsys.readouterr().err == ""
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/train.py"), config, "--cfg-options", "fast_paths.fused=1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "error: unknown fast_paths keys" in result.stderr and "Traceback" not in result.stderr
    # a key of an earlier version: one line saying what replaced it
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/train.py"), config, "--cfg-options", "fast_paths.fused_fir=all"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: fast_paths key 'fused_fir' was removed: use blur=\"folded\"")
    )
    if not torch.cuda.is_available():
        result = subprocess.run(
            [sys.executable, str(REPO / "tools/train.py"), config, "--amp", "--work-dir", str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0
        assert (
            "needs a GPU; on a CPU use dtype bfloat16" in result.stderr and "Traceback" not in result.stderr
        )
