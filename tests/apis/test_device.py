from pathlib import Path

import pytest
import torch

import lmtk
from lmtk.apis.device import check_device

QUICKSTART_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "lia" / "lia_synthetic_m20.py"


def test_devices_this_machine_has_come_back_as_torch_devices():
    assert check_device("cpu") == torch.device("cpu")
    assert check_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("gpu", "unknown device 'gpu'"),
        ("meta", "the meta device holds no data"),
        ("cuda:99", "(?i)cuda"),
    ],
)
def test_devices_this_machine_lacks_are_one_line_with_the_fix(device, message):
    with pytest.raises(ValueError, match=message) as caught:
        check_device(device)
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_load_model_refuses_a_missing_gpu_before_building():
    with pytest.raises(
        ValueError,
        match=r"CUDA is not available on this machine; use the CPU \(device=.cpu. in Python, --device cpu in the tools\)",
    ):
        lmtk.load_model(QUICKSTART_CONFIG, device="cuda")
