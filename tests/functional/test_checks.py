"""Tests for lmtk.functional.checks: one shape check, one message for every component and helper."""

import re

import numpy as np
import pytest
import torch

from lmtk.functional import check_shape


@pytest.mark.parametrize(
    ("x", "shape"),
    [
        (torch.zeros(2, 3, 4, 5), ["B", "3", "H", "W"]),
        (torch.zeros(2, 3, 4, 5), ["B", 3, 4, 5]),
        (torch.zeros(0, 3, 1, 1), ["B", 3, "H", "W"]),  # an empty batch is still a batch
        (np.zeros((7, 2)), ["K", 2]),
        (np.zeros((2, 7, 2)), ["*", 2]),
        (np.zeros(2), ["*", 2]),
        (torch.zeros(()), []),
    ],
)
def test_matching_shapes_pass(x, shape):
    check_shape(x, shape, "x")


@pytest.mark.parametrize(
    ("x", "shape", "message"),
    [
        (torch.zeros(2, 1, 4, 5), ["B", 3, "H", "W"], "image must be (B, 3, H, W), got (2, 1, 4, 5)"),
        (torch.zeros(3, 4, 5), ["B", 3, "H", "W"], "image must be (B, 3, H, W), got (3, 4, 5)"),
        (torch.zeros(1, 3, 64, 64), ["B", 3, 32, 32], "image must be (B, 3, 32, 32), got (1, 3, 64, 64)"),
        (np.zeros((2, 3)), ["*", 2], "image must be (*, 2), got (2, 3)"),
        (np.zeros(()), ["*", 2], "image must be (*, 2), got ()"),
        ([[0, 0]], ["K", 2], "image must be (K, 2), got list"),
    ],
)
def test_a_wrong_shape_names_the_argument_the_expected_and_the_actual_shape(x, shape, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_shape(x, shape, "image")


@pytest.mark.parametrize(
    ("x", "dtype", "message"),
    [
        (np.zeros((4, 4, 3)), np.uint8, "frame must be (H, W, 3) uint8, got (4, 4, 3) float64"),
        (
            torch.zeros(4, 4, 3, dtype=torch.uint8),
            np.uint8,
            "frame must be (H, W, 3) uint8, got (4, 4, 3) uint8",
        ),
        (torch.zeros(4, 4, 3), torch.uint8, "frame must be (H, W, 3) uint8, got (4, 4, 3) float32"),
        (np.zeros((4, 4), np.uint8), np.uint8, "frame must be (H, W, 3) uint8, got (4, 4) uint8"),
    ],
)
def test_a_wrong_dtype_is_named_beside_the_shape(x, dtype, message):
    # a torch uint8 tensor is not a numpy uint8 array: the dtype says which library's is meant
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_shape(x, ["H", "W", 3], "frame", dtype=dtype)
    check_shape(np.zeros((4, 4, 3), np.uint8), ["H", "W", 3], "frame", dtype=np.uint8)
    check_shape(torch.zeros(4, 4, 3, dtype=torch.uint8), ["H", "W", 3], "frame", dtype=torch.uint8)
