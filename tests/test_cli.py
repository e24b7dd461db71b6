"""Tests for lmtk.cli (the options the tools share) and ``python -m lmtk list [KIND]``."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmtk.__main__ import main
from lmtk.registry import KINDS, list_components

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "lmtk", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_list_prints_every_kind_and_name():
    result = _run("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for kind in KINDS:
        assert f"{kind}:" in lines
    for names in list_components().values():
        for name in names:
            assert f"  {name}" in lines
    assert "  lmtk.GramSchmidtBasis.v1" in lines
    assert "  lmtk.LIA.v1" in lines
    # each name is listed under its own kind
    assert lines.index("  lmtk.GramSchmidtBasis.v1") > lines.index("motion_bases:")
    assert lines.index("  lmtk.GramSchmidtBasis.v1") < lines.index("synthesis_networks:")


def test_list_unknown_kind_exits_2_without_traceback():
    result = _run("list", "bogus")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "bogus" in result.stderr and "Available kinds" in result.stderr
    assert "motion_bases" in result.stderr
    assert result.stdout == ""


def test_list_one_kind(capsys):
    assert main(["list", "motion_bases"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "motion_bases:"
    assert "  lmtk.GramSchmidtBasis.v1" in out and "  lmtk.DirectPath.v1" in out
    assert "models:" not in out


def test_list_empty_kind_says_none(capsys):
    empty = [kind for kind, names in list_components().items() if not names]
    if not empty:
        pytest.skip("every kind has components")
    assert main(["list", empty[0]]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{empty[0]}:", "  (none)"]


def test_inert_fast_path_options_fail_and_config_ones_are_noted():
    from lmtk.cli import check_inert_fast_paths
    from lmtk.fast_paths import FastPaths

    paths = FastPaths(freeze=True)
    with pytest.raises(ValueError, match="--freeze only acts on compiled graphs: add --compile"):
        check_inert_fast_paths(paths, {"freeze": True})
    notes = check_inert_fast_paths(paths, {"dtype": "float32"})
    assert len(notes) == 1 and "freeze=True" in notes[0] and "changes nothing" in notes[0]
    with pytest.raises(ValueError, match="--freeze is for inference only"):
        check_inert_fast_paths(FastPaths(compile="default", freeze=True), {"freeze": True}, training=True)
    assert check_inert_fast_paths(FastPaths(compile="default", freeze=True), {"freeze": True}) == []


def test_fast_path_switches_turn_a_config_setting_off_or_leave_it():
    from lmtk.cli import add_fast_path_arguments, fast_path_option, fast_path_overrides
    from lmtk.fast_paths import FastPaths

    parser = argparse.ArgumentParser()
    add_fast_path_arguments(parser)
    assert fast_path_overrides(parser.parse_args([])) == {}  # the config's fast_paths stay in force
    args = ["--no-channels-last", "--blur", "separable", "--no-compile", "--no-freeze"]
    given = fast_path_overrides(parser.parse_args(args))
    assert given == {"channels_last": False, "blur": "separable", "compile": False, "freeze": False}
    assert [fast_path_option(field, value) for field, value in given.items()] == [
        "--no-channels-last",
        "--blur",
        "--no-compile",
        "--no-freeze",
    ]
    config = dict(channels_last=True, blur="folded", compile="default", freeze=True)
    assert FastPaths.from_config(config, **given) == FastPaths(blur="separable")


@pytest.mark.parametrize(
    "options, replacement",
    [
        (["--fused-fir"], "use --blur folded"),
        (["--fused-fir", "up"], "use --blur folded (the up/down split was dropped"),
        (["--no-fused-fir"], "use --blur depthwise"),
        (["--fused-upsample", "phase"], "use --blur folded (the phase form"),
        (["--separable-fir"], "use --blur separable"),
        (["--no-separable-fir"], "use --blur depthwise"),
        (
            ["--low-precision-heads"],
            "the flow/RGB heads and the warp sampling always run in float32",
        ),
    ],
)
def test_options_of_earlier_versions_say_what_replaced_them(options, replacement, capsys):
    from lmtk.cli import ArgumentParser, add_fast_path_arguments

    parser = ArgumentParser()
    add_fast_path_arguments(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--dtype", "bfloat16", *options])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {options[0]} was removed: {replacement}")
    assert len(error.strip().splitlines()) == 1


def test_finite_float_refuses_nan_and_infinity():
    from lmtk.cli import finite_float

    assert finite_float("-2.5") == -2.5
    for text in ("nan", "inf", "-inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            finite_float(text)


def test_missing_folders_are_the_ones_making_a_path_creates(tmp_path):
    from lmtk.cli import missing_folders

    (tmp_path / "a").mkdir()
    assert missing_folders(tmp_path / "a" / "b" / "c") == [tmp_path / "a" / "b" / "c", tmp_path / "a" / "b"]
    assert missing_folders(tmp_path / "a") == []


def _model_parser() -> argparse.ArgumentParser:
    from lmtk.cli import ArgumentParser, add_model_arguments

    parser = ArgumentParser(prog="tool")
    add_model_arguments(parser)
    return parser


def test_model_arguments_parse_to_what_load_model_takes():
    args = _model_parser().parse_args(["--checkpoint", "run/iter_100.pth"])
    assert vars(args) == dict(
        checkpoint="run/iter_100.pth", config=None, trust_checkpoint=False, device="cpu"
    )
    args = _model_parser().parse_args(
        ["--checkpoint", "a.pt", "--config", "c.py", "--trust-checkpoint", "--device", "cpu:0"]
    )
    assert (args.config, args.trust_checkpoint, args.device) == ("c.py", True, "cpu:0")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --checkpoint"),
        (["--checkpoint", "a.pt", "--device", "meta"], "the meta device holds no data"),
    ],
)
def test_model_arguments_refuse_with_one_error_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        _model_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("tool", ["animate", "analyze_directions", "vis_directions", "vis_reference"])
def test_the_tools_that_load_a_model_share_its_options(tool, capsys):
    from tool_scripts import load_tool

    with pytest.raises(SystemExit):
        load_tool(tool).parse_args(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    for action in _model_parser()._actions[1:]:  # after --help
        assert action.option_strings[0] in usage
        if action.dest != "checkpoint":  # animate names more kinds of checkpoint
            assert " ".join(action.help.split()) in usage, (tool, action.dest)
    assert "--checkpoint CHECKPOINT" in usage
