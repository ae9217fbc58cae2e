"""Profiles, per-profile settings, seeding and devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labutils import config


@pytest.mark.parametrize("value, expected", [("fast", "fast"), ("FULL", "full"), (" fast ", "fast")])
def test_profile_reads_environment(monkeypatch, value, expected):
    monkeypatch.setenv("LABUTILS_PROFILE", value)
    assert config.profile() == expected


def test_auto_profile_follows_cuda(monkeypatch):
    monkeypatch.setenv("LABUTILS_PROFILE", "auto")
    monkeypatch.setattr(config, "_cuda_available", lambda: True)
    assert config.profile() == "full"
    monkeypatch.setattr(config, "_cuda_available", lambda: False)
    assert config.profile() == "fast"
    monkeypatch.delenv("LABUTILS_PROFILE")
    assert config.profile() == "fast"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LABUTILS_PROFILE", "turbo")
    with pytest.raises(ValueError, match="'fast', 'full' or 'auto'"):
        config.profile()


def test_settings_picks_the_active_profile():
    cfg = config.settings(fast=dict(epochs=2, width=8), full=dict(epochs=20, width=64), active_profile="full")
    assert cfg.epochs == 20 and cfg["width"] == 64 and cfg.profile == "full"
    assert "epochs=20" in repr(cfg)
    with pytest.raises(AttributeError, match="no setting named 'depth'"):
        _ = cfg.depth


def test_settings_rejects_mismatched_keys_and_bad_input():
    with pytest.raises(ValueError, match=r"differ in \['width'\]"):
        config.settings(fast=dict(epochs=2), full=dict(epochs=3, width=1))
    with pytest.raises(TypeError):
        config.settings(fast=[1], full=dict())
    with pytest.raises(ValueError, match="active_profile"):
        config.settings(fast={}, full={}, active_profile="medium")


def test_default_seed(monkeypatch):
    monkeypatch.delenv("LABUTILS_SEED", raising=False)
    assert config.default_seed() == 0
    monkeypatch.setenv("LABUTILS_SEED", "17")
    assert config.default_seed() == 17
    assert config.seed_everything() == 17
    monkeypatch.setenv("LABUTILS_SEED", "seventeen")
    with pytest.raises(ValueError, match="not an integer"):
        config.default_seed()
    with pytest.raises(ValueError, match="non-negative"):
        config.seed_everything(-1)


def _torch_run() -> np.ndarray:
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs = torch.randn(32, 5)
    for _ in range(5):
        optimizer.zero_grad()
        loss = model(torch.nn.functional.dropout(inputs, 0.2)).pow(2).mean()
        loss.backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()


def test_seed_everything_makes_pytorch_runs_identical():
    config.seed_everything(3)
    first = _torch_run()
    config.seed_everything(3)
    second = _torch_run()
    third = _torch_run()  # no reseed: the generators moved on
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, third)


def test_seed_everything_makes_keras_runs_identical():
    keras = pytest.importorskip("keras")

    def run():
        model = keras.Sequential(
            [
                keras.Input((5,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dropout(0.3),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        inputs = np.random.normal(size=(64, 5)).astype("float32")
        targets = np.random.normal(size=(64, 1)).astype("float32")
        model.fit(inputs, targets, epochs=2, batch_size=16, verbose=0)
        return np.concatenate([w.ravel() for w in model.get_weights()])

    config.seed_everything(5)
    first = run()
    config.seed_everything(5)
    second = run()
    np.testing.assert_array_equal(first, second)


def test_torch_device(monkeypatch):
    assert config.torch_device("cpu").type == "cpu"
    assert config.torch_device().type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="prefer="):
        config.torch_device("tpu")


def test_environment_report_prints_versions(capsys):
    report = config.environment_report(include_tensorflow=False)
    assert report["packages"]["torch"] == torch.__version__
    assert "torch_device" in report and report["profile"] in ("fast", "full")
    assert "numpy" in capsys.readouterr().out


@pytest.mark.parametrize("before, after", [(None, "true"), ("false", "false")])
def test_tensorflow_grows_gpu_memory_unless_the_user_says_otherwise(before, after):
    import os
    import subprocess
    import sys

    environment = {key: value for key, value in os.environ.items() if key != "TF_FORCE_GPU_ALLOW_GROWTH"}
    if before is not None:
        environment["TF_FORCE_GPU_ALLOW_GROWTH"] = before
    script = "import os, labutils.config; print(os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])"
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == after


def test_set_torch_threads_default_and_override(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("LABUTILS_TORCH_THREADS", raising=False)
        assert config.set_torch_threads(default=1) == 1
        assert config.set_torch_threads() == 1  # None keeps the current setting
        monkeypatch.setenv("LABUTILS_TORCH_THREADS", "2")
        assert config.set_torch_threads(default=1) == 2
        monkeypatch.setenv("LABUTILS_TORCH_THREADS", "two")
        with pytest.raises(ValueError, match="LABUTILS_TORCH_THREADS='two'"):
            config.set_torch_threads(default=1)
        monkeypatch.delenv("LABUTILS_TORCH_THREADS")
        with pytest.raises(ValueError, match="default must be a positive integer"):
            config.set_torch_threads(default=0)
    finally:
        torch.set_num_threads(before)


def test_warnings_show_no_absolute_paths():
    import warnings

    import labutils

    site_file = "/home/someone/.venv/lib/python3.11/site-packages/keras/src/callbacks/x.py"
    text = warnings.formatwarning("careful", UserWarning, site_file, 7)
    assert text.startswith("keras/src/callbacks/x.py:7: UserWarning: careful")
    project_file = labutils.__file__
    assert warnings.formatwarning("m", UserWarning, project_file, 1).startswith("labutils/__init__.py:1:")
