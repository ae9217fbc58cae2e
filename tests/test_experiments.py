"""The committed experiment scripts run (smoke) and their committed results are complete."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT_ROOT / "experiments" / "cifar10_simclr_pairs.py"
RESULTS = PROJECT_ROOT / "experiments" / "results" / "cifar10_simclr_pairs.json"


def load_script():
    spec = importlib.util.spec_from_file_location("cifar10_simclr_pairs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_of_every_part_merges_into_one_results_file(tmp_path, monkeypatch):
    from labutils import pretrain

    monkeypatch.setenv("LABUTILS_DATA_DIR", str(PROJECT_ROOT / "data"))
    mirror = PROJECT_ROOT.parent / "shared" / "data"
    if mirror.is_dir():
        monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(mirror))
    assert pretrain.main(["cifar10_simclr", "--smoke"]) == 0  # a tiny checkpoint for the simclr part
    script = load_script()
    results = tmp_path / "pairs.json"
    for part in ("supervised", "simclr", "ablation"):
        assert script.main(["--smoke", "--part", part, "--results", str(results)]) == 0
    stored = json.loads(results.read_text())
    assert set(stored["commands"]) == {"supervised", "simclr", "ablation"}
    assert {key.split("/")[0] for key in stored["records"]} == {"supervised", "simclr", "ablation"}
    again = dict(stored["records"])
    assert script.main(["--smoke", "--part", "supervised", "--results", str(results)]) == 0
    assert json.loads(results.read_text())["records"] == again, "a finished record is not computed again"


def test_committed_results_cover_every_draw_of_every_arm():
    if not RESULTS.is_file():
        pytest.skip("no committed results yet")
    script = load_script()
    stored = json.loads(RESULTS.read_text())
    for per_class, draws in script.DRAWS.items():
        for draw in range(draws):
            for arm in ("supervised", "simclr"):
                assert f"{arm}/{per_class}/{draw}" in stored["records"]
    for arm in ("reference", "no_colour"):
        for draw in range(script.DRAWS[10]):
            assert f"ablation/{arm}/{draw}" in stored["records"]
    manifest = json.loads((PROJECT_ROOT / "data" / "checkpoints" / "manifest.json").read_text())
    assert stored["checkpoint_sha256"] == manifest["cifar10_simclr"]["sha256"], "results of another checkpoint"
