"""Pretraining recipes: each runs (smoke), is deterministic, and the committed checkpoints load.

The full reproducibility check (re-run a recipe with its manifest's settings and compare the
metrics within the manifest's ``tolerance``) takes minutes per recipe, so it runs only when
``LABUTILS_REPRODUCE=1``. On the same machine and thread count a re-run is bit-identical; the
stated tolerance (e.g. 0.015 validation accuracy for ``mnist1d_teacher``) covers other CPUs,
thread counts and GPUs, whose float rounding differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from labutils import checkpoints, pretrain

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMMITTED = PROJECT_ROOT / "data" / "checkpoints"
REQUIRED_FIELDS = {
    "file",
    "sha256",
    "bytes",
    "command",
    "commit",
    "hardware",
    "wall_time_s",
    "metrics",
    "profile",
    "epochs",
    "seed",
    "tolerance",
}


@pytest.fixture
def project_data(monkeypatch):
    """Datasets for the recipes: the project's own cache, filled from the course's local mirror.

    Recipes need MNIST-1D (made locally, ~10 s) and CIFAR-10 (downloaded, ~25 s to decode), so
    the smoke runs share the project's cache (``data/``, which the notebooks use too) instead of
    the empty per-test cache. The mirror beside the checkout (``../shared/data``, or
    ``LABUTILS_DATA_MIRROR_FOR_TESTS``) stands in for the download sites, as in CI; without it
    CIFAR-10 is downloaded, or, offline, fails with the loader's message saying what to do.
    """
    monkeypatch.setenv("LABUTILS_DATA_DIR", str(PROJECT_ROOT / "data"))
    configured = os.environ.get("LABUTILS_DATA_MIRROR_FOR_TESTS")
    mirror = Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "data"
    if mirror.is_dir():
        monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(mirror))


@pytest.mark.parametrize("name", sorted(pretrain.RECIPES))
def test_smoke_runs_and_is_deterministic(name, project_data, capsys):
    folder = checkpoints.checkpoint_dir()
    assert pretrain.main([name, "--smoke"]) == 0
    first = json.loads((folder / "manifest.json").read_text())[name]
    weights = torch.load(folder / first["file"], weights_only=True)
    assert pretrain.main([name, "--smoke"]) == 0
    second = json.loads((folder / "manifest.json").read_text())[name]
    assert first["command"] == f"python -m labutils.pretrain {name} --smoke"
    assert first["smoke"] is True and first["epochs"] == 1
    assert first["metrics"] == second["metrics"], "two smoke runs from one seed differ"
    assert first["sha256"] == second["sha256"], "two smoke runs saved different weights"
    model = checkpoints.load_checkpoint(pretrain.build_model(name), name)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, weights[key])
    assert "saved" in capsys.readouterr().out


def test_smoke_without_folder_uses_a_temporary_one(project_data, monkeypatch):
    monkeypatch.delenv("LABUTILS_CHECKPOINT_DIR")
    before = {path: path.stat().st_mtime for path in COMMITTED.glob("*")} if COMMITTED.exists() else {}
    name = sorted(pretrain.RECIPES)[0]
    assert pretrain.main([name, "--smoke"]) == 0
    assert os.environ["LABUTILS_CHECKPOINT_DIR"] != str(COMMITTED)
    after = {path: path.stat().st_mtime for path in COMMITTED.glob("*")} if COMMITTED.exists() else {}
    assert before == after, "a smoke run touched data/checkpoints"


def test_unknown_recipe_and_bad_arguments():
    with pytest.raises(ValueError, match="no pretraining recipe named 'ghost'"):
        pretrain.build_model("ghost")
    with pytest.raises(SystemExit):
        pretrain.main(["ghost"])
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        pretrain.run_recipe(sorted(pretrain.RECIPES)[0], epochs=0)


@pytest.mark.parametrize("smoke, seen", [(False, 300), (True, 256)])
def test_supervised_helper_trains_augments_and_truncates_smoke_runs(smoke, seen):
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(600) % 2
    inputs = torch.randn(600, 2, generator=generator) + 3 * labels[:, None].float()
    split = {"x_train": inputs[:300], "y_train": labels[:300], "x_val": inputs[300:], "y_val": labels[300:]}
    augmented = []

    def augment(batch, *, generator):
        assert isinstance(generator, torch.Generator)
        augmented.append(len(batch))
        return batch + 0.01 * torch.randn(batch.shape, generator=generator)

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    metrics = pretrain._train_supervised(
        model,
        split=split,
        augment=augment,
        epochs=5,
        smoke=smoke,
        seed=0,
        learning_rate=0.2,
        weight_decay=0.0,
        batch_size=32,
        device="cpu",
    )
    assert set(metrics) == {"val_accuracy", "val_loss"}
    assert metrics["val_accuracy"] > 0.9
    assert sum(augmented) == 5 * seen  # five epochs over the (truncated) training data
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.parametrize("name", sorted(pretrain.RECIPES))
def test_committed_checkpoint_is_recorded_and_loads(name, monkeypatch):
    if not (COMMITTED / "manifest.json").exists():
        pytest.skip("no committed checkpoints")
    monkeypatch.setenv("LABUTILS_CHECKPOINT_DIR", str(COMMITTED))
    entry = checkpoints.manifest().get(name)
    if entry is None and pretrain.RECIPES[name].needs_gpu:
        pytest.skip(
            f"{name} needs a GPU and has no committed checkpoint yet: run "
            f"python -m labutils.pretrain {name} --profile full on a GPU"
        )
    assert entry is not None, f"{name} has no manifest entry: run python -m labutils.pretrain {name}"
    assert set(entry) >= REQUIRED_FIELDS, f"missing fields {REQUIRED_FIELDS - set(entry)}"
    assert entry["bytes"] < 2_000_000, "checkpoints must stay small"
    assert entry["command"].startswith(f"python -m labutils.pretrain {name}")
    assert "--smoke" not in entry["command"] and not entry["smoke"]
    assert set(entry["tolerance"]) <= set(entry["metrics"])
    checkpoints.load_checkpoint(pretrain.build_model(name), name)  # verifies the sha256


@pytest.mark.skipif(os.environ.get("LABUTILS_REPRODUCE") != "1", reason="minutes per recipe: set LABUTILS_REPRODUCE=1")
@pytest.mark.parametrize("name", sorted(pretrain.RECIPES))
def test_full_rerun_reproduces_manifest_metrics(name, project_data):
    committed = json.loads((COMMITTED / "manifest.json").read_text())[name]
    entry = pretrain.run_recipe(name, profile=committed["profile"], epochs=committed["epochs"], seed=committed["seed"])
    for metric, tolerance in committed["tolerance"].items():
        difference = abs(entry["metrics"][metric] - committed["metrics"][metric])
        assert difference <= tolerance, (
            f"{name}: {metric} {entry['metrics'][metric]} vs manifest "
            f"{committed['metrics'][metric]} (tolerance {tolerance})"
        )


def test_load_or_train_loads_with_provenance_or_says_how_to_make_it(project_data, capsys):
    from labutils.data import DataError

    with pytest.raises(DataError, match="python -m labutils.pretrain mnist1d_teacher"):
        pretrain.load_or_train("mnist1d_teacher", train=False)
    assert pretrain.main(["mnist1d_teacher", "--smoke"]) == 0
    model = pretrain.load_or_train("mnist1d_teacher")
    assert not model.training
    assert "loaded checkpoint made by `python -m labutils.pretrain mnist1d_teacher --smoke`" in capsys.readouterr().out


def test_compare_with_manifest_uses_the_tolerance_and_names_missing_metrics():
    committed = {"metrics": {"accuracy": 0.80, "loss": 0.5}, "tolerance": {"accuracy": 0.02}}
    comparison = pretrain.compare_with_manifest({"metrics": {"accuracy": 0.79, "loss": 9.0}}, committed)
    assert comparison == {"accuracy": dict(rerun=0.79, manifest=0.80, difference=-0.01, tolerance=0.02, within=True)}
    assert not pretrain.compare_with_manifest({"metrics": {"accuracy": 0.75}}, committed)["accuracy"]["within"]
    with pytest.raises(ValueError, match="accuracy"):
        pretrain.compare_with_manifest({"metrics": {"loss": 0.5}}, committed)


def test_verify_reruns_in_a_temporary_folder_and_records_the_outcome(tmp_path, monkeypatch):
    committed_folder = tmp_path / "committed"
    committed_folder.mkdir()
    committed = {
        "profile": "fast",
        "epochs": 3,
        "seed": 0,
        "commit": "abc1234",
        "wall_time_s": 10.0,
        "metrics": {"val_accuracy": 0.9},
        "tolerance": {"val_accuracy": 0.01},
    }
    (committed_folder / "manifest.json").write_text(json.dumps({"mnist1d_teacher": committed}))
    (committed_folder / "reproductions.json").write_text(json.dumps({"other": {"kept": True}}))
    monkeypatch.setenv("LABUTILS_CHECKPOINT_DIR", str(committed_folder))
    seen = {}

    def fake_run_recipe(name, **options):
        seen.update(options, folder=os.environ["LABUTILS_CHECKPOINT_DIR"])
        return {
            "commit": "def5678",
            "hardware": "CPU",
            "torch_threads": 1,
            "wall_time_s": 12.5,
            "metrics": {"val_accuracy": 0.905},
        }

    monkeypatch.setattr(pretrain, "run_recipe", fake_run_recipe)
    assert pretrain.main(["mnist1d_teacher", "--verify"]) == 0
    assert (seen["profile"], seen["epochs"], seen["seed"]) == ("fast", 3, 0)
    assert seen["folder"] != str(committed_folder), "the re-run must not write into the committed folder"
    assert os.environ["LABUTILS_CHECKPOINT_DIR"] == str(committed_folder)
    records = json.loads((committed_folder / "reproductions.json").read_text())
    assert records["other"] == {"kept": True}
    record = records["mnist1d_teacher"]
    assert record["reproduces"] and record["committed_commit"] == "abc1234" and record["wall_time_s"] == 12.5
    assert json.loads((committed_folder / "manifest.json").read_text())["mnist1d_teacher"] == committed

    monkeypatch.setattr(
        pretrain,
        "run_recipe",
        lambda name, **options: {**fake_run_recipe(name, **options), "metrics": {"val_accuracy": 0.8}},
    )
    assert pretrain.main(["mnist1d_teacher", "--verify"]) == 1
    assert not json.loads((committed_folder / "reproductions.json").read_text())["mnist1d_teacher"]["reproduces"]
