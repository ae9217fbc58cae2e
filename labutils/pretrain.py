"""Train the models that notebooks start from and save them as checksummed checkpoints.

Usage::

    python -m labutils.pretrain NAME [--profile fast|full] [--epochs N] [--smoke]
    python -m labutils.pretrain --list

Each recipe is a small function that builds its model (:func:`build_model`, which notebooks
import too), trains it from a fixed seed, evaluates it on a fixed validation split and saves
it with :func:`labutils.checkpoints.save_checkpoint`. The manifest entry records the exact
command, the commit, the hardware, the wall time, the metrics and the tolerance within which
re-running the same command in the same profile reproduces them.

``--smoke`` trains a few steps into a temporary folder (``LABUTILS_CHECKPOINT_DIR`` when it
is set, else a fresh temporary directory): it checks that a recipe runs without touching
``data/checkpoints``.

Recipes
-------
``mnist1d_teacher``
    The distillation teacher of notebook 11: a 1-D CNN (width 96, ~66k parameters) on MNIST-1D (the published 4000
    training signals, split 3200 train / 800 validation by :func:`mnist1d_split`).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["RECIPES", "Recipe", "build_model", "mnist1d_split", "run_recipe", "main"]

PRETRAIN_SEED = 0


@dataclass(frozen=True)
class Recipe:
    """One pretraining recipe.

    Attributes
    ----------
    build : callable
        ``() -> nn.Module``, the untrained model (same architecture as the checkpoint).
    train : callable
        ``(model, *, epochs, smoke, seed) -> dict`` of validation metrics; trains in place.
    epochs : dict
        Default epochs per profile, ``{"fast": ..., "full": ...}``.
    tolerance : dict
        Largest absolute difference per metric expected when the full command is re-run in
        the same profile (different thread counts or hardware change float rounding).
    description : str
    """

    build: Callable[[], nn.Module]
    train: Callable[..., dict]
    epochs: dict
    tolerance: dict = field(default_factory=dict)
    description: str = ""


# --------------------------------------------------------------------------- MNIST-1D teacher
def mnist1d_split(*, validation_size: int = 800, seed: int = PRETRAIN_SEED) -> dict:
    """The fixed MNIST-1D split used by the distillation teacher and notebook 11.

    Parameters
    ----------
    validation_size : int, default 800
        Signals of the published 4000-signal training set held out for validation.
    seed : int, default 0
        Seed of the permutation that picks them.

    Returns
    -------
    dict
        ``x_train`` float32 (3200, 40), ``y_train`` int64 (3200,), ``x_val`` (800, 40),
        ``y_val`` (800,), ``x_test`` (1000, 40), ``y_test`` (1000,) as torch tensors.
    """
    from .data import load_mnist1d

    data = load_mnist1d()
    count = len(data["x"])
    if not 0 < validation_size < count:
        raise ValueError(f"validation_size must be in (0, {count}), got {validation_size}")
    order = np.random.default_rng(seed).permutation(count)
    train, val = order[validation_size:], order[:validation_size]
    as_tensor = torch.from_numpy
    return {
        "x_train": as_tensor(data["x"][train]), "y_train": as_tensor(data["y"][train]),
        "x_val": as_tensor(data["x"][val]), "y_val": as_tensor(data["y"][val]),
        "x_test": as_tensor(data["x_test"]), "y_test": as_tensor(data["y_test"]),
    }


def build_mnist1d_teacher(*, width: int = 96) -> nn.Module:
    """A 1-D CNN for MNIST-1D: three convolutions and a linear layer (~66k parameters).

    Input shape (batch, 40), output logits of shape (batch, 10).
    """
    return nn.Sequential(
        nn.Unflatten(1, (1, 40)),
        nn.Conv1d(1, width, kernel_size=5, padding=2), nn.ReLU(),
        nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(10 * width, 10),
    )


def random_circular_shift(signals: torch.Tensor, *, max_shift: int = 4,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each signal (rows of shape (n, length)) circularly by a random -max_shift..max_shift."""
    count, length = signals.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (count, 1), generator=generator)
    positions = (torch.arange(length)[None, :] - shifts.to(signals.device)) % length
    return torch.gather(signals, 1, positions)


def _train_mnist1d_teacher(model: nn.Module, *, epochs: int, smoke: bool, seed: int) -> dict:
    from .train import LearningRateScheduler, evaluate, fit

    split = mnist1d_split()
    train_data = (split["x_train"], split["y_train"])
    val_data = (split["x_val"], split["y_val"])
    if smoke:
        train_data = (train_data[0][:256], train_data[1][:256])
        val_data = (val_data[0][:256], val_data[1][:256])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    scheduler = LearningRateScheduler(
        lambda optim: torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=epochs))
    generator = torch.Generator().manual_seed(seed)
    fit(model, train_data, val_data, epochs=epochs, optimizer=optimizer, batch_size=128,
        callbacks=[scheduler], seed=seed, device="cpu", progress=False,
        transform=lambda signals: random_circular_shift(signals, max_shift=4, generator=generator))
    scores = evaluate(model, val_data, device="cpu")
    return {"val_accuracy": scores["accuracy"], "val_loss": scores["loss"]}


# --------------------------------------------------------------------------- registry
RECIPES: dict[str, Recipe] = {
    "mnist1d_teacher": Recipe(
        build=build_mnist1d_teacher,
        train=_train_mnist1d_teacher,
        epochs={"fast": 50, "full": 50},
        tolerance={"val_accuracy": 0.015, "val_loss": 0.05},
        description="Distillation teacher (notebook 11): 1-D CNN on MNIST-1D, 3200 train / "
                    "800 validation signals (labutils.pretrain.mnist1d_split), random circular "
                    "shifts of up to 4 samples, AdamW 3e-3, cosine schedule, batch 128.",
    ),
}


def build_model(name: str) -> nn.Module:
    """Return the untrained model of recipe ``name`` (load a checkpoint into it).

    Raises
    ------
    ValueError
        If ``name`` is not a recipe.
    """
    return _recipe(name).build()


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"no pretraining recipe named {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]


def run_recipe(name: str, *, profile: str = "fast", epochs: int | None = None,
               smoke: bool = False, command: str | None = None,
               seed: int = PRETRAIN_SEED) -> dict:
    """Build, train, evaluate and save checkpoint ``name``; return its manifest entry.

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.
    profile : {"fast", "full"}
        Picks the default number of epochs.
    epochs : int, optional
        Overrides the profile's epochs.
    smoke : bool, default False
        Train one epoch on a few batches (to check that the recipe runs).
    command : str, optional
        The command line recorded in the manifest (default: rebuilt from the arguments).
    seed : int, default 0
    """
    from .checkpoints import save_checkpoint

    recipe = _recipe(name)
    if profile not in recipe.epochs:
        raise ValueError(f"profile={profile!r}; use one of {sorted(recipe.epochs)}")
    if epochs is None:
        epochs = 1 if smoke else recipe.epochs[profile]
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if command is None:
        command = f"python -m labutils.pretrain {name} --profile {profile} --epochs {epochs}"
        command += " --smoke" if smoke else ""
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = recipe.build()
    metrics = recipe.train(model, epochs=epochs, smoke=smoke, seed=seed)
    wall_time = time.perf_counter() - started
    from .train import count_parameters

    extra = {
        "profile": profile,
        "epochs": epochs,
        "seed": seed,
        "smoke": smoke,
        "parameters": count_parameters(model),
        "tolerance": recipe.tolerance,
        "description": recipe.description,
    }
    return save_checkpoint(model, name, command=command, wall_time_s=wall_time,
                           metrics=metrics, extra=extra)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m labutils.pretrain",
                                     description="Train a model that a notebook starts from.")
    parser.add_argument("name", nargs="?", help=f"one of {sorted(RECIPES)}")
    parser.add_argument("--profile", choices=("fast", "full"), default="fast")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--smoke", action="store_true",
                        help="train a few steps into a temporary checkpoint folder")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        for name, recipe in sorted(RECIPES.items()):
            print(f"{name}: {recipe.description}")
        return 0
    if args.name not in RECIPES:
        parser.error(f"unknown recipe {args.name!r}; known: {sorted(RECIPES)}")
    if args.smoke and not os.environ.get("LABUTILS_CHECKPOINT_DIR"):
        os.environ["LABUTILS_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="labutils-smoke-")
    command = shlex.join(["python", "-m", "labutils.pretrain", *argv])
    entry = run_recipe(args.name, profile=args.profile, epochs=args.epochs, smoke=args.smoke,
                       command=command)
    from .checkpoints import checkpoint_dir

    print(f"saved {checkpoint_dir() / entry['file']} ({entry['bytes']} bytes) in "
          f"{entry['wall_time_s']} s: {entry['metrics']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
