"""Train the models that notebooks start from and save them as checksummed checkpoints.

Usage::

    python -m labutils.pretrain NAME [--profile fast|full] [--epochs N] [--smoke]
    python -m labutils.pretrain NAME --verify
    python -m labutils.pretrain --list

This module is the checkpoint pipeline (:class:`Recipe`, :data:`RECIPES`, :func:`run_recipe`,
:func:`load_or_train`, the command line) and each recipe's model and training function. The
fixed data splits live in :mod:`labutils.data`, the augmentations in :mod:`labutils.augment`,
and the SimCLR method itself (loss, encoders, views, pretraining loop, linear probe, kNN) in
:mod:`labutils.simclr`.

Each recipe is a small function that builds its model (:func:`build_model`, which notebooks
import too), trains it from a fixed seed, evaluates it on a fixed validation split and saves
it with :func:`labutils.checkpoints.save_checkpoint`. The manifest entry records the exact
command, the commit, the hardware, the wall time, the metrics and the tolerance within which
re-running the same command in the same profile reproduces them.

``--verify`` re-runs a committed recipe with its manifest's profile, epochs and seed into a
temporary folder, compares the metrics with the manifest's within its ``tolerance``, and records
the outcome (command, commit, hardware, threads, wall time, both sets of metrics) under the
recipe's name in ``reproductions.json`` beside the manifest (:func:`verify_recipe`); it exits
with status 1 when a metric is outside its tolerance.

``--smoke`` trains a few steps into a temporary folder (``LABUTILS_CHECKPOINT_DIR`` when it
is set, else a fresh temporary directory): it checks that a recipe runs without touching
``data/checkpoints``.

Recipes
-------
``cifar5_source``
    The transfer-learning source network of notebook 10: a small CNN with BatchNorm
    (:func:`build_cifar5_source`, ``model.body`` and ``model.head``) trained on CIFAR-10
    classes 0-4 (airplane, automobile, bird, cat, deer; 10,000 training and 2,000 held-out
    validation images, :func:`labutils.data.cifar5_source_split`).
``mnist1d_teacher``
    The distillation teacher of notebook 11: a 1-D CNN (width 96, ~66k parameters) on
    MNIST-1D (the published 4000 training signals, split 3200 train / 800 validation by
    :func:`labutils.data.mnist1d_split`).
``mnist1d_simclr``
    The SimCLR encoder of notebook 12 on MNIST-1D (:func:`labutils.simclr.build_mnist1d_simclr`,
    ``model.encoder`` and ``model.projection_head``), pretrained without labels on the 3200
    training signals of :func:`labutils.data.mnist1d_split` with
    :func:`labutils.simclr.mnist1d_simclr_views`.
``cifar10_simclr``
    The SimCLR encoder of notebook 12 on CIFAR-10 (:func:`labutils.simclr.build_cifar10_simclr`),
    pretrained without labels on 45,000 images (:func:`labutils.data.cifar10_simclr_split`)
    with :func:`labutils.simclr.cifar10_simclr_views`. The ``fast`` profile is the CPU recipe
    that made the committed checkpoint (width 32, 15 epochs, about 100 minutes on one busy core,
    resumable after every epoch); ``full`` is the GPU recipe (width 64, 40 epochs).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .augment import images_to_float, random_circular_shift, random_flip_and_crop
from .checkpoints import checkpoint_dir, checkpoint_exists, load_checkpoint, manifest, save_checkpoint
from .config import profile as active_profile
from .config import set_torch_threads, torch_device
from .data import SPLIT_SEED, DataError, cifar5_source_split, cifar10_simclr_split, mnist1d_split
from .files import atomic_write
from .simclr import (
    SimCLRModel,
    build_cifar10_simclr,
    build_mnist1d_simclr,
    cifar10_simclr_views,
    encode,
    few_label_metrics,
    linear_probe_accuracy,
    mnist1d_simclr_views,
    pretrain_simclr,
)
from .train import LearningRateScheduler, count_parameters, evaluate, fit

__all__ = ["RECIPES", "Recipe", "build_model", "load_or_train", "run_recipe", "main"]

PRETRAIN_SEED = SPLIT_SEED


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
    needs_gpu : bool
        The recipe is meant for a GPU (hours on a CPU). Until its checkpoint is committed,
        notebooks say the claim that needs it is unchecked, and the committed-checkpoint test
        skips it with that message instead of failing.
    options : dict
        Per profile, keyword arguments of ``build`` (``"build"``) and of ``train``
        (``"train"``), e.g. a narrower network for the CPU (``fast``) profile. The manifest
        records the build options, so :func:`build_model` rebuilds the checkpoint's shape.
    """

    build: Callable[..., nn.Module]
    train: Callable[..., dict]
    epochs: dict
    tolerance: dict = field(default_factory=dict)
    description: str = ""
    needs_gpu: bool = False
    options: dict = field(default_factory=dict)

    def build_options(self, profile: str) -> dict:
        """Keyword arguments of ``build`` in ``profile``."""
        return dict(self.options.get(profile, {}).get("build", {}))

    def train_options(self, profile: str) -> dict:
        """Keyword arguments of ``train`` in ``profile`` (besides epochs, smoke and seed)."""
        return dict(self.options.get(profile, {}).get("train", {}))


# --------------------------------------------------------------------------- supervised recipes
def _train_supervised(
    model: nn.Module,
    *,
    split: dict,
    augment: Callable,
    epochs: int,
    smoke: bool,
    seed: int,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    device,
) -> dict:
    """Train a classifier with augmentation, AdamW and a cosine schedule; evaluate it.

    The shared body of the supervised recipes (``mnist1d_teacher``, ``cifar5_source``):
    :func:`labutils.train.fit` with one cosine cycle over ``epochs``, then
    :func:`labutils.train.evaluate` on the validation data, on the CPU.

    Parameters
    ----------
    model : nn.Module
        ``(batch, ...) -> (batch, classes)`` logits; trained in place, moved to the CPU after.
    split : dict
        ``x_train`` (n, ...), ``y_train`` (n,), ``x_val`` (m, ...), ``y_val`` (m,) tensors.
    augment : callable
        ``augment(batch, *, generator) -> Tensor`` of the batch's shape: a random
        transformation of each training batch; ``generator`` is a CPU generator seeded
        with ``seed``.
    epochs : int
    smoke : bool
        Keep only the first 256 training and 256 validation examples.
    seed : int
        Seeds the shuffling of :func:`labutils.train.fit` and the augmentation.
    learning_rate, weight_decay : float
        AdamW's.
    batch_size : int
    device : torch.device or str
        Where to train.

    Returns
    -------
    dict
        ``val_accuracy`` and ``val_loss`` on the validation data.
    """
    train_data = (split["x_train"], split["y_train"])
    val_data = (split["x_val"], split["y_val"])
    if smoke:
        train_data = (train_data[0][:256], train_data[1][:256])
        val_data = (val_data[0][:256], val_data[1][:256])
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    scheduler = LearningRateScheduler(lambda optim: torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=epochs))
    generator = torch.Generator().manual_seed(seed)
    fit(
        model,
        train_data,
        val_data,
        epochs=epochs,
        optimizer=optimizer,
        batch_size=batch_size,
        callbacks=[scheduler],
        seed=seed,
        device=device,
        progress=False,
        transform=lambda batch: augment(batch, generator=generator),
    )
    model.to("cpu")
    scores = evaluate(model, val_data, device="cpu")
    return {"val_accuracy": scores["accuracy"], "val_loss": scores["loss"]}


# --------------------------------------------------------------------------- MNIST-1D teacher
def build_mnist1d_teacher(*, width: int = 96) -> nn.Module:
    """A 1-D CNN for MNIST-1D: three convolutions and a linear layer (~66k parameters).

    Input shape (batch, 40), output logits of shape (batch, 10).
    """
    return nn.Sequential(
        nn.Unflatten(1, (1, 40)),
        nn.Conv1d(1, width, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(10 * width, 10),
    )


def _train_mnist1d_teacher(model: nn.Module, *, epochs: int, smoke: bool, seed: int) -> dict:
    return _train_supervised(
        model,
        split=mnist1d_split(),
        augment=functools.partial(random_circular_shift, max_shift=4),
        epochs=epochs,
        smoke=smoke,
        seed=seed,
        learning_rate=3e-3,
        weight_decay=1e-2,
        batch_size=128,
        device="cpu",
    )


# --------------------------------------------------------------------------- CIFAR-5 source
CIFAR5_SOURCE_CLASSES = (0, 1, 2, 3, 4)


def _conv_block(in_channels: int, out_channels: int) -> list:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def build_cifar5_source(*, width: int = 16, num_classes: int = 5) -> nn.Module:
    """A small CNN with BatchNorm: ``model.body`` (features) and ``model.head`` (linear).

    Four conv-BatchNorm-ReLU blocks of widths (w, 2w, 4w, 8w), max-pooling between them and
    global average pooling: ``body`` maps (batch, 3, 32, 32) to features (batch, 8w);
    ``head`` maps them to (batch, num_classes) logits (~100k parameters for w=16).
    """
    from collections import OrderedDict

    body = nn.Sequential(
        *_conv_block(3, width),
        nn.MaxPool2d(2),
        *_conv_block(width, 2 * width),
        nn.MaxPool2d(2),
        *_conv_block(2 * width, 4 * width),
        nn.MaxPool2d(2),
        *_conv_block(4 * width, 8 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return nn.Sequential(OrderedDict(body=body, head=nn.Linear(8 * width, num_classes)))


def _train_cifar5_source(model: nn.Module, *, epochs: int, smoke: bool, seed: int) -> dict:
    return _train_supervised(
        model,
        split=cifar5_source_split(),
        augment=functools.partial(random_flip_and_crop, padding=4),
        epochs=epochs,
        smoke=smoke,
        seed=seed,
        learning_rate=3e-3,
        weight_decay=5e-4,
        batch_size=128,
        device=torch_device(),
    )


# --------------------------------------------------------------------------- SimCLR (notebook 12)
def _train_mnist1d_simclr(model: SimCLRModel, *, epochs: int, smoke: bool, seed: int) -> dict:
    split = mnist1d_split()
    inputs, labels = split["x_train"], split["y_train"]
    val_inputs, val_labels = split["x_val"], split["y_val"]
    if smoke:
        inputs, labels = inputs[:512], labels[:512]
        val_inputs, val_labels = val_inputs[:256], val_labels[:256]
    losses = pretrain_simclr(
        model,
        inputs,
        views=mnist1d_simclr_views,
        epochs=epochs,
        batch_size=128,
        learning_rate=2e-3,
        temperature=0.2,
        seed=seed,
        device="cpu",
        max_steps=2 if smoke else None,
    )
    features = encode(model, inputs)
    val_features = encode(model, val_inputs)
    metrics = {"final_loss": losses[-1]}
    metrics.update(
        few_label_metrics(
            features, labels, val_features, val_labels, per_class_values=(2,) if smoke else (10, 100), seed=seed
        )
    )
    return metrics


def _train_cifar10_simclr(model: SimCLRModel, *, epochs: int, smoke: bool, seed: int, batch_size: int = 256) -> dict:
    split = cifar10_simclr_split()
    inputs, labels = split["x_train"], split["y_train"]
    val_inputs, val_labels = split["x_val"], split["y_val"]
    device = torch.device("cpu") if smoke else torch_device()
    if smoke:
        inputs, labels = inputs[:128], labels[:128]
        val_inputs, val_labels = val_inputs[:128], val_labels[:128]
    on_device = inputs.to(device)  # 45000 uint8 images are 138 MB: keep them on the GPU
    if device.type == "cpu":  # oneDNN convolutions are about 1.6x faster channels-last
        model.to(memory_format=torch.channels_last)

    def views(images, *, generator):
        batch = cifar10_simclr_views(images_to_float(images), generator=generator)
        return batch.contiguous(memory_format=torch.channels_last) if device.type == "cpu" else batch

    resume_path = None if smoke else checkpoint_dir() / ".cifar10_simclr.resume.pt"
    losses = pretrain_simclr(
        model,
        on_device,
        views=views,
        epochs=epochs,
        batch_size=64 if smoke else batch_size,
        learning_rate=2e-3,
        temperature=0.2,
        seed=seed,
        device=device,
        max_steps=2 if smoke else None,
        resume_path=resume_path,
        progress=not smoke,
    )
    features = encode(model, on_device, prepare=images_to_float, device=device)
    val_features = encode(model, val_inputs, prepare=images_to_float, device=device)
    model.to("cpu", memory_format=torch.contiguous_format)
    metrics = {"final_loss": losses[-1]}
    metrics.update(
        few_label_metrics(
            features, labels, val_features, val_labels, per_class_values=(2,) if smoke else (10, 100), seed=seed
        )
    )
    # linear evaluation with every label, the number the SimCLR paper reports
    metrics["val_linear_probe_all"] = linear_probe_accuracy(features, labels, val_features, val_labels, seed=seed)
    return metrics


# --------------------------------------------------------------------------- registry
RECIPES: dict[str, Recipe] = {
    "cifar5_source": Recipe(
        build=build_cifar5_source,
        train=_train_cifar5_source,
        epochs={"fast": 10, "full": 10},
        tolerance={"val_accuracy": 0.02, "val_loss": 0.06},
        description="Transfer-learning source network (notebook 10): CNN with BatchNorm "
        "(widths 16-32-64-128, ~98k parameters) on CIFAR-10 classes 0-4, 2000 "
        "train / 400 validation images per class (labutils.data."
        "cifar5_source_split), random flips and 4-pixel shifts, AdamW 3e-3, "
        "cosine schedule, batch 128.",
    ),
    "mnist1d_teacher": Recipe(
        build=build_mnist1d_teacher,
        train=_train_mnist1d_teacher,
        epochs={"fast": 50, "full": 50},
        tolerance={"val_accuracy": 0.015, "val_loss": 0.05},
        description="Distillation teacher (notebook 11): 1-D CNN on MNIST-1D, 3200 train / "
        "800 validation signals (labutils.data.mnist1d_split), random circular "
        "shifts of up to 4 samples, AdamW 3e-3, cosine schedule, batch 128.",
    ),
    "mnist1d_simclr": Recipe(
        build=build_mnist1d_simclr,
        train=_train_mnist1d_simclr,
        epochs={"fast": 60, "full": 60},
        tolerance={"val_linear_probe_10": 0.04, "val_knn_10": 0.04, "val_linear_probe_100": 0.03, "val_knn_100": 0.03},
        description="SimCLR encoder (notebook 12): 1-D CNN with BatchNorm and global max "
        "pooling (labutils.simclr.build_mnist1d_simclr) pretrained without labels "
        "on the 3200 MNIST-1D training signals of mnist1d_split, views by "
        "mnist1d_simclr_views (crop-stretch, shift, ramp, gain, noise), NT-Xent at "
        "temperature 0.2, batch 128, AdamW 2e-3, cosine schedule. Metrics: linear "
        "probe and 5-NN on the 800 validation signals with 10 or 100 labels per class.",
    ),
    "cifar10_simclr": Recipe(
        build=build_cifar10_simclr,
        train=_train_cifar10_simclr,
        epochs={"fast": 15, "full": 40},
        tolerance={
            "val_linear_probe_10": 0.04,
            "val_knn_10": 0.04,
            "val_linear_probe_100": 0.03,
            "val_knn_100": 0.03,
            "val_linear_probe_all": 0.02,
        },
        description="SimCLR encoder (notebook 12): 6-convolution CNN with BatchNorm "
        "(labutils.simclr.build_cifar10_simclr) pretrained without labels on 45,000 "
        "CIFAR-10 training images (labutils.data.cifar10_simclr_split), views by "
        "cifar10_simclr_views (resized crop, flip, colour jitter, grayscale), NT-Xent "
        "at temperature 0.2, AdamW 2e-3, cosine schedule. fast profile (a CPU, 85 to 100 min "
        "on one thread of a busy 2-core machine): width 32, batch 256, 15 epochs, channels-last; full "
        "profile (a GPU, bfloat16 autocast): width 64, batch 512, 40 epochs. Resumes "
        "from data/checkpoints/.cifar10_simclr.resume.pt, written after each epoch. "
        "Metrics: linear probe and 5-NN on the 5000 held-out images with 10 or 100 "
        "labels per class, and the linear probe with all 45,000 labels.",
        options={
            "fast": {"build": {"width": 32}, "train": {"batch_size": 256}},
            "full": {"build": {"width": 64}, "train": {"batch_size": 512}},
        },
    ),
}


def build_model(name: str, *, profile: str | None = None) -> nn.Module:
    """Return the untrained model of recipe ``name`` (load a checkpoint into it).

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.
    profile : {"fast", "full"}, optional
        Build the shape that recipe trains in this profile. By default, the shape of the
        committed checkpoint (its manifest entry records its build options), else the
        ``fast`` profile's.

    Raises
    ------
    ValueError
        If ``name`` is not a recipe.
    """
    recipe = _recipe(name)
    if profile is not None:
        return recipe.build(**recipe.build_options(profile))
    entry = manifest().get(name)
    if entry is not None and "build_options" in entry:
        return recipe.build(**entry["build_options"])
    return recipe.build(**recipe.build_options("fast"))


def load_or_train(
    name: str,
    *,
    profile: str | None = None,
    train: bool | None = None,
    retrain: bool = False,
    seed: int = PRETRAIN_SEED,
) -> nn.Module:
    """The model of checkpoint ``name``: loaded (sha256-verified) if present, else trained.

    Prints where the weights come from (the manifest's command, hardware and metrics), so a
    notebook shows the provenance of what it builds on.

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.
    profile : {"fast", "full"}, optional
        The recipe's profile when training here (default: the active profile).
    train : bool, optional
        Train with the recipe when the checkpoint is missing (not saved: the committed
        checkpoint comes from the command line). Default: only in the ``full`` profile on a
        GPU, or for recipes that are not marked ``needs_gpu``.
    retrain : bool, default False
        Train with the recipe even when the checkpoint exists (a notebook's full profile may
        show the pretraining itself).
    seed : int, default 0
        The recipe's seed when training here (checkpoints are always made from seed 0).

    Returns
    -------
    nn.Module
        In eval mode, on the CPU.

    Raises
    ------
    labutils.data.DataError
        If the checkpoint is missing and training here is not allowed; the message gives the
        command that makes it.
    """

    recipe = _recipe(name)
    if checkpoint_exists(name) and not retrain:
        entry = manifest()[name]
        model = load_checkpoint(build_model(name), name)
        print(
            f"{name}: loaded checkpoint made by `{entry['command']}` on {entry['hardware']} "
            f"in {entry['wall_time_s']:.0f} s; recorded metrics {entry['metrics']}"
        )
        return model.eval()
    profile = profile or active_profile()
    if train is None or retrain:
        train = retrain or not recipe.needs_gpu or (profile == "full" and torch.cuda.is_available())
    if not train:
        raise DataError(
            f"checkpoint {name!r} is missing; make it with `python -m labutils.pretrain {name} --profile {profile}`"
        )
    print(f"{name}: no checkpoint; training it here with the {profile} recipe ...", flush=True)
    torch.manual_seed(seed)
    model = build_model(name, profile=profile)
    metrics = recipe.train(
        model, epochs=recipe.epochs[profile], smoke=False, seed=seed, **recipe.train_options(profile)
    )
    print(f"{name}: trained here, metrics {metrics}")
    return model.to("cpu").eval()


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"no pretraining recipe named {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]


def run_recipe(
    name: str,
    *,
    profile: str = "fast",
    epochs: int | None = None,
    smoke: bool = False,
    command: str | None = None,
    seed: int = PRETRAIN_SEED,
) -> dict:
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
    model = recipe.build(**recipe.build_options(profile))
    metrics = recipe.train(model, epochs=epochs, smoke=smoke, seed=seed, **recipe.train_options(profile))
    wall_time = time.perf_counter() - started
    extra = {
        "profile": profile,
        "build_options": recipe.build_options(profile),
        "train_options": recipe.train_options(profile),
        "torch_threads": torch.get_num_threads(),
        "epochs": epochs,
        "seed": seed,
        "smoke": smoke,
        "parameters": count_parameters(model),
        "tolerance": recipe.tolerance,
        "description": recipe.description,
    }
    return save_checkpoint(model, name, command=command, wall_time_s=wall_time, metrics=metrics, extra=extra)


def compare_with_manifest(entry: dict, committed: dict) -> dict:
    """Compare a re-run's metrics with a committed manifest entry.

    Parameters
    ----------
    entry : dict
        The manifest entry of the re-run (as returned by :func:`run_recipe`).
    committed : dict
        The committed manifest entry of the same recipe; its ``tolerance`` lists the metrics
        to compare.

    Returns
    -------
    dict
        ``{metric: {"rerun", "manifest", "difference", "tolerance", "within"}}`` for every
        metric with a tolerance.

    Raises
    ------
    ValueError
        If the re-run lacks a metric that the committed entry has a tolerance for.
    """
    missing = set(committed.get("tolerance", {})) - set(entry["metrics"])
    if missing:
        raise ValueError(f"the re-run has no metric {sorted(missing)}; is it the same recipe?")
    comparison = {}
    for metric, tolerance in committed["tolerance"].items():
        rerun, recorded = entry["metrics"][metric], committed["metrics"][metric]
        difference = round(rerun - recorded, 6)
        comparison[metric] = dict(
            rerun=rerun,
            manifest=recorded,
            difference=difference,
            tolerance=tolerance,
            within=abs(difference) <= tolerance,
        )
    return comparison


def record_reproduction(name: str, entry: dict, committed: dict, *, folder: Path) -> dict:
    """Write the outcome of re-running recipe ``name`` into ``folder/reproductions.json``.

    Parameters
    ----------
    name : str
    entry, committed : dict
        The re-run's manifest entry and the committed one (see :func:`compare_with_manifest`).
    folder : Path
        The committed checkpoint folder (``data/checkpoints``).

    Returns
    -------
    dict
        The record: date, command, commit, hardware, torch threads, wall time, the committed
        checkpoint's commit and wall time, the metric comparison and ``reproduces`` (every metric
        within its tolerance). The file is replaced atomically; other recipes' records stay.
    """
    comparison = compare_with_manifest(entry, committed)
    record = {
        "date": datetime.date.today().isoformat(),
        "command": entry.get("command", f"python -m labutils.pretrain {name} --verify"),
        "commit": entry["commit"],
        "hardware": entry["hardware"],
        "torch_threads": entry.get("torch_threads"),
        "wall_time_s": entry["wall_time_s"],
        "committed_commit": committed["commit"],
        "committed_wall_time_s": committed["wall_time_s"],
        "metrics": comparison,
        "reproduces": all(row["within"] for row in comparison.values()),
    }
    path = Path(folder) / "reproductions.json"
    records = json.loads(path.read_text()) if path.exists() else {}
    records[name] = record
    text = json.dumps(records, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda temporary: temporary.write_text(text))
    return record


def verify_recipe(name: str) -> dict:
    """Re-run committed recipe ``name`` in a temporary folder and record how well it reproduces.

    Uses the committed manifest entry's profile, epochs and seed; the committed checkpoint is
    not touched. Returns the record written by :func:`record_reproduction`.
    """
    folder = checkpoint_dir()
    committed = manifest().get(name)
    if committed is None:
        raise DataError(f"{name} has no committed manifest entry in {folder}: run python -m labutils.pretrain {name}")
    previous = os.environ.get("LABUTILS_CHECKPOINT_DIR")
    os.environ["LABUTILS_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix=f"labutils-verify-{name}-")
    try:
        entry = run_recipe(
            name,
            profile=committed["profile"],
            epochs=committed["epochs"],
            seed=committed["seed"],
            command=f"python -m labutils.pretrain {name} --verify",
        )
    finally:
        if previous is None:
            os.environ.pop("LABUTILS_CHECKPOINT_DIR")
        else:
            os.environ["LABUTILS_CHECKPOINT_DIR"] = previous
    return record_reproduction(name, entry, committed, folder=folder)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m labutils.pretrain", description="Train a model that a notebook starts from."
    )
    parser.add_argument("name", nargs="?", help=f"one of {sorted(RECIPES)}")
    parser.add_argument("--profile", choices=("fast", "full"), default="fast")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="train a few steps into a temporary checkpoint folder")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="re-run with the manifest's settings in a temporary folder, compare the metrics with the "
        "manifest and record the outcome in reproductions.json",
    )
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        for name, recipe in sorted(RECIPES.items()):
            print(f"{name}{' (needs a GPU)' if recipe.needs_gpu else ''}: {recipe.description}")
        return 0
    if args.name not in RECIPES:
        parser.error(f"unknown recipe {args.name!r}; known: {sorted(RECIPES)}")
    if args.smoke and not os.environ.get("LABUTILS_CHECKPOINT_DIR"):
        os.environ["LABUTILS_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="labutils-smoke-")
    set_torch_threads()  # LABUTILS_TORCH_THREADS, when set, caps PyTorch's CPU threads
    if args.verify:
        if args.smoke or args.epochs is not None:
            parser.error("--verify uses the manifest's settings: drop --smoke and --epochs")
        record = verify_recipe(args.name)
        for metric, row in record["metrics"].items():
            print(
                f"{metric}: {row['rerun']} vs manifest {row['manifest']} (tolerance {row['tolerance']}): "
                f"{'ok' if row['within'] else 'OUTSIDE'}"
            )
        print(
            f"{args.name} {'reproduces' if record['reproduces'] else 'does NOT reproduce'} its manifest "
            f"({record['wall_time_s']} s); recorded in {checkpoint_dir() / 'reproductions.json'}"
        )
        return 0 if record["reproduces"] else 1
    command = shlex.join(["python", "-m", "labutils.pretrain", *argv])
    entry = run_recipe(args.name, profile=args.profile, epochs=args.epochs, smoke=args.smoke, command=command)
    print(
        f"saved {checkpoint_dir() / entry['file']} ({entry['bytes']} bytes) in "
        f"{entry['wall_time_s']} s: {entry['metrics']}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
