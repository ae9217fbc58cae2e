"""Checkpoints: saved with a manifest entry, verified on load."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from labutils import checkpoints
from labutils.data import DataError


def test_save_and_load_verifies_checksum(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    entry = checkpoints.save_checkpoint(
        model, "tiny", command="python -m labutils.pretrain tiny", wall_time_s=1.23, metrics={"val_accuracy": 0.5}
    )
    assert entry["file"] == "tiny.pt" and len(entry["sha256"]) == 64
    assert checkpoints.checkpoint_exists("tiny")
    stored = json.loads((checkpoints.checkpoint_dir() / "manifest.json").read_text())
    assert stored["tiny"]["command"] == "python -m labutils.pretrain tiny"
    assert stored["tiny"]["metrics"] == {"val_accuracy": 0.5}
    other = checkpoints.load_checkpoint(nn.Linear(3, 2), "tiny")
    torch.testing.assert_close(other.weight, model.weight)
    # Corrupt the file: loading must refuse it and say how to recreate it.
    path = checkpoints.checkpoint_dir() / "tiny.pt"
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(DataError, match="checksum mismatch.*python -m labutils.pretrain tiny"):
        checkpoints.load_checkpoint(nn.Linear(3, 2), "tiny")


def test_unknown_and_missing_checkpoints():
    with pytest.raises(DataError, match="no checkpoint named 'ghost'"):
        checkpoints.load_checkpoint(nn.Linear(1, 1), "ghost")
    checkpoints.save_checkpoint(nn.Linear(1, 1), "gone", command="cmd", wall_time_s=0, metrics={})
    (checkpoints.checkpoint_dir() / "gone.pt").unlink()
    assert not checkpoints.checkpoint_exists("gone")
    with pytest.raises(DataError, match="missing; recreate it with: cmd"):
        checkpoints.load_checkpoint(nn.Linear(1, 1), "gone")
