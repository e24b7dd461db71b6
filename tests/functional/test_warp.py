"""Tests for lmtk.functional.warp and lmtk.models.warpers (kornia-style identity and gradcheck tests)."""

import re

import pytest
import torch

from lmtk.functional.warp import base_grid, flow_warp
from lmtk.models.warpers import FlowWarper

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_base_grid_is_normalised_xy():
    grid = base_grid(3, 5, torch.zeros(1))
    assert grid.shape == (1, 3, 5, 2)
    assert torch.allclose(grid[0, 0, :, 0], torch.linspace(-1, 1, 5))  # x varies along width
    assert torch.allclose(grid[0, :, 0, 1], torch.linspace(-1, 1, 3))  # y varies along height
    assert torch.all(grid[..., 0][:, :, :1] == -1) and torch.all(grid[..., 1][:, -1:] == 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_identity_flow_returns_input(device, dtype):
    x = torch.randn(2, 3, 5, 7, device=device, dtype=dtype)
    zero = torch.zeros(2, 2, 5, 7, device=device, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert torch.allclose(flow_warp(x, zero, align_corners=True), x, atol=tol)
    assert torch.allclose(FlowWarper(align_corners=True)(x, zero), x, atol=tol)


def test_zero_flow_without_align_corners_zooms_about_the_centre():
    # the published setting: not the identity, but the centre pixel of an odd-sized map stays put
    x = torch.randn(1, 2, 7, 7)
    out = flow_warp(x, torch.zeros(1, 2, 7, 7), align_corners=False)
    assert not torch.allclose(out, x, atol=1e-3)
    assert torch.allclose(out[..., 3, 3], x[..., 3, 3], atol=1e-6)


@pytest.mark.parametrize("warp", [lambda x, f: flow_warp(x, f, align_corners=True), FlowWarper(True)])
def test_one_pixel_flow_shifts_by_one_pixel(warp):
    height, width = 6, 9
    x = torch.randn(2, 3, height, width, dtype=torch.float64)
    flow = torch.zeros(2, 2, height, width, dtype=torch.float64)
    flow[:, 0] = 2 / (width - 1)
    out = warp(x, flow)
    assert torch.allclose(out[..., :-1], x[..., 1:], atol=1e-10)  # out(x) = in(x + 1)
    assert torch.allclose(out[..., -1], torch.zeros_like(out[..., -1]), atol=1e-10)  # zero padding
    flow = torch.zeros_like(flow)
    flow[:, 1] = -2 / (height - 1)
    out = warp(x, flow)
    assert torch.allclose(out[..., 1:, :], x[..., :-1, :], atol=1e-10)  # out(y) = in(y - 1)


def test_mask_multiplies():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    flow = 0.2 * torch.randn(2, 2, 8, 8)
    mask = torch.rand(2, 1, 8, 8)
    warper = FlowWarper()
    assert torch.allclose(warper(x, flow, mask), warper(x, flow) * mask, atol=1e-6)
    assert torch.equal(warper(x, flow, torch.zeros_like(mask)), torch.zeros_like(x))


@pytest.mark.parametrize("align_corners", [True, False])
def test_gradcheck(align_corners):
    torch.manual_seed(0)
    features = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    # small non-integer displacements keep every sample away from the kinks of bilinear interpolation
    flow = (0.13 * torch.randn(1, 2, 5, 5, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda f, d: flow_warp(f, d, align_corners=align_corners), (features, flow), eps=1e-6, atol=1e-5
    )


def test_gradcheck_flow_warper_with_mask():
    torch.manual_seed(0)
    warper = FlowWarper(align_corners=True)
    features = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    flow = (0.11 * torch.randn(1, 2, 4, 4, dtype=torch.float64)).requires_grad_(True)
    mask = torch.rand(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(warper, (features, flow, mask), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_output_follows_input_dtype_and_device(device, dtype):
    x = torch.randn(1, 3, 4, 6, device=device, dtype=dtype)
    flow = torch.zeros(1, 2, 4, 6, device=device, dtype=dtype)
    for out in (flow_warp(x, flow), FlowWarper()(x, flow)):
        assert out.dtype == dtype and out.device == x.device
    # a float32 flow on float64 features samples in the features' dtype
    assert flow_warp(x, flow.float()).dtype == dtype


def test_flow_warper_caches_grid_per_shape_device_dtype():
    warper = FlowWarper()
    flow = torch.zeros(1, 2, 4, 6)
    grid = warper.grid(flow)
    assert warper.grid(torch.ones(3, 2, 4, 6)) is grid  # batch size does not matter
    assert len(warper._grids) == 1
    assert warper.grid(flow.double()).dtype == torch.float64
    assert warper.grid(torch.zeros(1, 2, 6, 4)).shape == (1, 6, 4, 2)
    assert len(warper._grids) == 3
    assert torch.equal(grid, base_grid(4, 6, flow))
    warper(torch.randn(1, 3, 4, 6), flow)
    assert len(warper._grids) == 3


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match=re.escape("flow must be (B, 2, H, W), got (1, 3, 4, 4)")):
        flow_warp(torch.randn(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match=re.escape("features must be (B, C, H, W), got (3, 4, 4)")):
        flow_warp(torch.randn(3, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="differ in size"):
        flow_warp(torch.randn(1, 3, 4, 4), torch.zeros(1, 2, 5, 4))


def test_bfloat16_features_are_sampled_at_float32_points():
    """Under autocast the sampling points stay float32: bf16 points near the border are 2**-7 apart."""
    torch.manual_seed(0)
    features = torch.randn(1, 4, 64, 64).bfloat16()
    flow = 0.01 * torch.randn(1, 2, 64, 64)
    exact = flow_warp(features.float(), flow).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        precise = flow_warp(features, flow)
        coarse = flow_warp(features, flow, precise=False)
    assert precise.dtype == torch.bfloat16
    assert torch.equal(precise, exact)
    # the bf16 sampling points are off by up to half a bf16 step: a visibly different result
    assert (coarse.float() - exact.float()).abs().max() > 10 * (precise.float() - exact.float()).abs().max()


def test_broadcast_source_features_are_cast_once(monkeypatch):
    """One source's features expanded over a batch (the Animator's case) are cast to float32 once,
    not once per frame, and sample exactly like a materialised copy."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    features = torch.randn(1, 4, 16, 16).bfloat16().expand(8, -1, -1, -1)
    flow = 0.05 * torch.randn(8, 2, 16, 16)
    sampled = []
    grid_sample = F.grid_sample
    monkeypatch.setattr(F, "grid_sample", lambda x, *args: sampled.append(x) or grid_sample(x, *args))
    warped = flow_warp(features, flow)
    assert sampled[0].dtype == torch.float32 and sampled[0].stride(0) == 0
    assert torch.equal(warped, flow_warp(features.contiguous(), flow))
