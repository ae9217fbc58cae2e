"""make gpu-check: its smoke run takes every step on a CPU and records the timings."""

from __future__ import annotations

import json

import nbformat
import pytest

from labutils import gpu_check

PROJECT_ROOT = gpu_check.PROJECT_ROOT


def test_smoke_run_trains_the_recipe_runs_notebooks_and_writes_timings(tmp_path, monkeypatch):

    monkeypatch.setenv("LABUTILS_DATA_DIR", str(PROJECT_ROOT / "data"))
    mirror = PROJECT_ROOT.parent / "shared" / "data"
    if mirror.is_dir():
        monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(mirror))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1 + 1)")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "99_tiny.ipynb"
    nbformat.write(notebook, path)
    timings = tmp_path / "timings.json"
    committed = (gpu_check.NOTEBOOKS / "timings.json").read_text()
    results = gpu_check.run_check(smoke=True, notebooks=[str(path)], timings_path=timings)
    recorded = json.loads(timings.read_text())["gpu"]
    assert recorded == results and recorded["99_tiny.ipynb"] > 0
    assert recorded["cifar10_simclr (full recipe)"] > 0 and "val_linear_probe_all" in recorded["cifar10_simclr metrics"]
    assert (gpu_check.NOTEBOOKS / "timings.json").read_text() == committed, (
        "a smoke run must not touch the committed timings"
    )


def test_without_a_gpu_the_real_check_says_what_to_do(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="--smoke"):
        gpu_check.run_check()
