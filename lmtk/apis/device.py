"""``check_device``: a device this machine has, or one line that says why not."""

from __future__ import annotations

import torch

from ..cli import error_reason

__all__ = ["check_device"]

_USE_CPU = "use the CPU (device='cpu' in Python, --device cpu in the tools)"


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device`, after checking that this machine has it.

    Raises:
        ValueError: one line naming what is missing and the fix (use the CPU), instead of the
            error a first tensor on that device would raise deep inside model code.

    Example:
        >>> check_device("cpu")
        device(type='cpu')
        >>> check_device("cpu:0").type
        'cpu'
    """
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {str(device)!r}: {error}") from error
    if device.type == "cpu":
        return device
    if device.type == "meta":
        raise ValueError(f"the meta device holds no data, so nothing can be animated on it; {_USE_CPU}")
    backend = getattr(torch, device.type, None)  # torch.cuda, torch.mps, torch.xpu ...
    if hasattr(backend, "is_available") and not backend.is_available():
        raise ValueError(f"{device.type.upper()} is not available on this machine; {_USE_CPU}")
    count = backend.device_count() if hasattr(backend, "device_count") else None
    if count is not None and device.index is not None and device.index >= count:
        raise ValueError(f"{device} does not exist; this machine has {count} {device.type} device(s)")
    try:
        torch.empty(0, device=device)  # device types without an availability check
    except (RuntimeError, NotImplementedError, AssertionError, ImportError) as error:
        reason = error_reason(error).split(". ")[0]  # the first sentence
        raise ValueError(f"cannot use device {device} on this machine ({reason}); {_USE_CPU}") from error
    return device
