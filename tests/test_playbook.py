"""The capstone's grid (labutils.playbook): a smoke run resumes, and the committed results are complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labutils import playbook

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def real_data(monkeypatch, shared_mirror):
    """The project's data cache and committed checkpoints (read only), with the local mirror."""
    monkeypatch.setenv("LABUTILS_DATA_DIR", str(PROJECT_ROOT / "data"))
    monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(shared_mirror))
    monkeypatch.setenv("LABUTILS_CHECKPOINT_DIR", str(PROJECT_ROOT / "data" / "checkpoints"))


def test_split_parts_are_disjoint_and_stratified(real_data):
    split = playbook.playbook_split(smoke=True)
    pool, val, unlabelled = (
        split[f"{part}_images"].reshape(len(split[f"{part}_images"]), -1) for part in ("pool", "val", "unlabelled")
    )
    assert np.bincount(split["val_labels"]).tolist() == [playbook.VALIDATION_PER_CLASS] * 5
    assert np.bincount(split["unlabelled_labels"]).tolist() == [playbook.UNLABELLED_PER_CLASS] * 5
    assert len(split["pool_labels"]) == 25_000 - 5 * (playbook.VALIDATION_PER_CLASS + playbook.UNLABELLED_PER_CLASS)
    seen = {image.tobytes() for image in pool[:2000]}
    assert not any(image.tobytes() in seen for image in np.concatenate([val, unlabelled])), "a pool image is reused"
    first = playbook.draw_indices(split["pool_labels"], per_class=10, draw=0)
    assert np.array_equal(first, playbook.draw_indices(split["pool_labels"], per_class=10, draw=0))
    assert np.bincount(split["pool_labels"][first]).tolist() == [10] * 5


def test_smoke_run_records_every_arm_and_resumes(real_data, tmp_path):
    assert playbook.main(["--smoke", "--sizes", "10", "--draws", "2", "--results-dir", str(tmp_path)]) == 0
    stored = json.loads((tmp_path / "size_010.json").read_text())
    assert set(stored["records"]) == {"tuning"} | {f"{arm}/{draw}" for arm in playbook.ARMS for draw in range(2)}
    assert all(0.0 <= record["test_accuracy"] <= 1.0 for key, record in stored["records"].items() if key != "tuning")
    again = dict(stored["records"])
    assert playbook.main(["--smoke", "--sizes", "10", "--draws", "2", "--results-dir", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "size_010.json").read_text())["records"] == again, "a finished record is recomputed"
    # a tuning result that lacks a grid value is re-tuned; a changed choice drops the arms it made
    stored["records"]["tuning"]["weight_decay"] = 123.0
    del stored["records"]["tuning"]["validation_accuracies"]["weight_decay"]
    for draw in range(2):
        stored["records"][f"weight_decay/{draw}"]["test_accuracy"] = -1.0  # marks the stale records
    (tmp_path / "size_010.json").write_text(json.dumps(stored))
    assert playbook.main(["--smoke", "--sizes", "10", "--draws", "2", "--results-dir", str(tmp_path)]) == 0
    redone = json.loads((tmp_path / "size_010.json").read_text())["records"]
    assert redone["tuning"]["weight_decay"] == playbook.TUNING_GRID["weight_decay"][0]
    assert all(redone[f"weight_decay/{draw}"]["test_accuracy"] >= 0 for draw in range(2)), "stale records kept"
    assert redone["baseline/0"] == again["baseline/0"], "an arm the knob does not touch was recomputed"


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="steps and batch_size"):
        playbook.train_network(
            None, None, None, val_inputs=None, val_labels=None, steps=0, batch_size=4, learning_rate=1e-3, seed=0
        )
    with pytest.raises(ValueError, match="unknown group"):
        playbook.run_group(None, "magic", 0, {})


def test_committed_results_cover_every_arm_draw_and_size():
    results = playbook.load_results()
    assert sorted(results) == list(playbook.SIZES)
    manifest = json.loads((PROJECT_ROOT / "data" / "checkpoints" / "manifest.json").read_text())
    for size, stored in results.items():
        assert not stored["smoke"] and stored["draws"] >= 5
        assert stored["schedule"] == playbook.SCHEDULE[size]
        for arm in playbook.ARMS:
            for draw in range(stored["draws"]):
                assert f"{arm}/{draw}" in stored["records"], f"{arm}/{draw} missing at {size} per class"
        for name in ("cifar5_source", "cifar10_simclr"):
            assert stored["checkpoints"][name] == manifest[name]["sha256"], "results of another checkpoint"
