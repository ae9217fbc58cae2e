"""Atomic writes: a failed write leaves nothing behind, and saved weights are byte-stable."""

from __future__ import annotations

import hashlib

import pytest
import torch

from labutils.files import atomic_save_torch, atomic_write


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    target = tmp_path / "result.json"

    def fail(temporary):
        temporary.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(target, fail)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        atomic_write(target, lambda temporary: (_ for _ in ()).throw(RuntimeError("stop")))
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["result.json"]


def test_two_saves_of_the_same_weights_have_the_same_bytes(tmp_path):
    weights = torch.nn.Linear(3, 2).state_dict()
    first = atomic_save_torch(weights, tmp_path / "a.pt").read_bytes()
    second = atomic_save_torch(weights, tmp_path / "b.pt").read_bytes()
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    torch.testing.assert_close(loaded["weight"], weights["weight"])
