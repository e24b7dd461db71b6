"""The rules that rebuild the conformance fixtures' inputs (../shared/conformance/*/README.md)."""

import json
import zlib
from pathlib import Path

import torch


def seeded_randn(shape, name: str) -> torch.Tensor:
    """``randn(shape, name)`` of the fixtures' READMEs: a float32 normal seeded by the name's CRC-32."""
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    return torch.randn(shape, generator=generator)


def conformance_state(conformance_dir: Path, network: str) -> dict:
    """The published weights of ``network`` ("generator" or "discriminator") by the inference fixture's rule."""
    keys = json.loads((conformance_dir / "official_keys.json").read_text())[network]
    return seeded_state(keys, torch.load(conformance_dir / "official_buffers.pt")[network])


def seeded_state(keys: list[dict], buffers: dict) -> dict:
    """The fixtures' weights rule: ``keys`` entries of kind "buffer" from ``buffers``, every other one
    ``seeded_randn(shape, key)``, times 0.05 for biases."""
    state = {}
    for entry in keys:
        key = entry["key"]
        if entry["kind"] == "buffer":
            state[key] = buffers[key]
            continue
        state[key] = seeded_randn(entry["shape"], key) * (0.05 if key.endswith("bias") else 1.0)
    return state
