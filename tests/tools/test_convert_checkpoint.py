"""tools/convert_checkpoint.py: mistakes in its arguments."""

from pathlib import Path

import pytest
from tool_scripts import load_tool

ROOT = Path(__file__).resolve().parents[2]


def test_an_output_folder_is_refused_before_loading(tmp_path, capsys):
    # the input need not exist: the output is checked first, so no traceback from the final rename
    with pytest.raises(SystemExit) as exit_info:
        load_tool("convert_checkpoint").main([str(tmp_path / "missing.pt"), str(tmp_path)])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error:") and "is a folder" in line and "model.pth" in line


def test_a_config_as_input_is_refused(tmp_path, capsys):
    # it would load with fresh random weights and be written as if it were a trained model
    with pytest.raises(SystemExit) as exit_info:
        load_tool("convert_checkpoint").main(
            [str(ROOT / "configs/lia/lia_synthetic_m20.py"), str(tmp_path / "out.pth")]
        )
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error:") and "is a config, not a checkpoint" in line
    assert not any(tmp_path.iterdir())


def _tiny(align_corners: bool) -> dict:
    shape = dict(size=64, latent_dim=32, channel_base=256)
    warper = dict(type="lmtk.FlowWarper.v1", align_corners=align_corners)
    return dict(
        type="lmtk.LIA.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", **shape),
        generator=dict(type="lmtk.FlowGenerator.v1", warper=warper, **shape),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
    )


@pytest.mark.usefixtures("one_thread")
def test_a_model_the_published_format_cannot_describe_is_refused(tmp_path, capsys):
    import torch

    import lmtk
    from lmtk.registry import build

    for align_corners in (False, True):  # True: the synthetic quickstart's warper, not the published one
        torch.manual_seed(0)
        config = _tiny(align_corners)
        lmtk.save_model(build(config), tmp_path / f"{align_corners}.pth", config=config)
    tool = load_tool("convert_checkpoint")
    assert tool.main([str(tmp_path / "False.pth"), str(tmp_path / "ok.pt"), "--to", "published"]) == 0
    capsys.readouterr()
    assert tool.main([str(tmp_path / "True.pth"), str(tmp_path / "bad.pt"), "--to", "published"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: the published format cannot hold this model")
    assert not (tmp_path / "bad.pt").exists()


@pytest.mark.usefixtures("one_thread")
def test_liax_converts_to_lmtk_and_back_to_its_bare_format(tmp_path, capsys):
    import torch

    import lmtk
    from lmtk.models.liax_keys import to_liax
    from lmtk.registry import build

    shape = dict(size=32, latent_dim=32, channel_base=256, max_channels=32)
    torch.manual_seed(0)
    model = build(
        dict(
            type="lmtk.LIAX.v1",
            encoder=dict(type="lmtk.LIAEncoder.v1", widen_first=True, **shape),
            generator=dict(
                type="lmtk.LIAXGenerator.v1", norm_groups=8, num_flow_blocks=1, num_refine_blocks=1, **shape
            ),
            motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
        )
    )
    published = to_liax(model.state_dict())
    torch.save(published, tmp_path / "lia-x.pt")
    tool = load_tool("convert_checkpoint")
    assert tool.main([str(tmp_path / "lia-x.pt"), str(tmp_path / "lmtk.pth")]) == 0
    assert type(lmtk.load_model(tmp_path / "lmtk.pth")).__name__ == "LIAX"
    assert tool.main([str(tmp_path / "lmtk.pth"), str(tmp_path / "back.pt"), "--to", "published"]) == 0
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    assert set(back) == set(published) and all(torch.equal(back[k], published[k]) for k in published)
    assert "wrote" in capsys.readouterr().out
