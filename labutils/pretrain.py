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
``cifar5_source``
    The transfer-learning source network of notebook 10: a small CNN with BatchNorm
    (:func:`build_cifar5_source`, ``model.body`` and ``model.head``) trained on CIFAR-10
    classes 0-4 (airplane, automobile, bird, cat, deer; 10,000 training and 2,000 held-out
    validation images, :func:`cifar5_source_split`).
``mnist1d_teacher``
    The distillation teacher of notebook 11: a 1-D CNN (width 96, ~66k parameters) on MNIST-1D (the published 4000
    training signals, split 3200 train / 800 validation by :func:`mnist1d_split`).
``mnist1d_simclr``
    The SimCLR encoder of notebook 12 on MNIST-1D (:func:`build_mnist1d_simclr`,
    ``model.encoder`` and ``model.projection_head``), pretrained without labels on the 3200
    training signals of :func:`mnist1d_split` with :func:`mnist1d_simclr_views`.
``cifar10_simclr``
    The SimCLR encoder of notebook 12 on CIFAR-10 (:func:`build_cifar10_simclr`), pretrained
    without labels on 45,000 images (:func:`cifar10_simclr_split`) with
    :func:`cifar10_simclr_views`; needs a GPU (``--profile full``).
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
    needs_gpu : bool
        The recipe is meant for a GPU (hours on a CPU). Until its checkpoint is committed,
        notebooks say the claim that needs it is unchecked, and the committed-checkpoint test
        skips it with that message instead of failing.
    """

    build: Callable[[], nn.Module]
    train: Callable[..., dict]
    epochs: dict
    tolerance: dict = field(default_factory=dict)
    description: str = ""
    needs_gpu: bool = False


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


# --------------------------------------------------------------------------- CIFAR-5 source
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR5_SOURCE_CLASSES = (0, 1, 2, 3, 4)


def cifar_images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images (n, 32, 32, 3) -> float32 tensor (n, 3, 32, 32), standardized per channel.

    Uses CIFAR-10's channel means and standard deviations (the same constants for source
    and target data, as a pretrained network expects).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (n, height, width, 3), got {images.shape}")
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (tensor - mean) / std


def cifar5_source_split(*, train_per_class: int = 2000, validation_per_class: int = 400,
                        seed: int = PRETRAIN_SEED) -> dict:
    """The fixed source data of ``cifar5_source``: CIFAR-10 training images of classes 0-4.

    Parameters
    ----------
    train_per_class, validation_per_class : int
        Disjoint training and held-out validation images per class (default 2000 and 400,
        i.e. 10,000 and 2,000 images).
    seed : int, default 0

    Returns
    -------
    dict
        ``x_train`` float32 (n, 3, 32, 32) standardized, ``y_train`` int64 (n,), ``x_val``,
        ``y_val``, ``class_names`` (airplane, automobile, bird, cat, deer).
    """
    from .data import load_cifar10

    total = train_per_class + validation_per_class
    source = load_cifar10("train", classes=CIFAR5_SOURCE_CLASSES, per_class=total, seed=seed,
                          progress=False)
    order = np.random.default_rng(seed).permutation(len(source.labels))
    labels = source.labels[order]
    # the first train_per_class images of each class (in the shuffled order) train, the rest validate
    rank = np.empty(len(labels), dtype=np.int64)
    for label in range(len(CIFAR5_SOURCE_CLASSES)):
        members = np.flatnonzero(labels == label)
        rank[members] = np.arange(len(members))
    train, val = order[rank < train_per_class], order[rank >= train_per_class]
    return {
        "x_train": cifar_images_to_tensor(source.images[train]),
        "y_train": torch.from_numpy(source.labels[train]),
        "x_val": cifar_images_to_tensor(source.images[val]),
        "y_val": torch.from_numpy(source.labels[val]),
        "class_names": source.class_names,
    }


def _conv_block(in_channels: int, out_channels: int) -> list:
    return [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


def build_cifar5_source(*, width: int = 16, num_classes: int = 5) -> nn.Module:
    """A small CNN with BatchNorm: ``model.body`` (features) and ``model.head`` (linear).

    Four conv-BatchNorm-ReLU blocks of widths (w, 2w, 4w, 8w), max-pooling between them and
    global average pooling: ``body`` maps (batch, 3, 32, 32) to features (batch, 8w);
    ``head`` maps them to (batch, num_classes) logits (~100k parameters for w=16).
    """
    from collections import OrderedDict

    body = nn.Sequential(
        *_conv_block(3, width), nn.MaxPool2d(2),
        *_conv_block(width, 2 * width), nn.MaxPool2d(2),
        *_conv_block(2 * width, 4 * width), nn.MaxPool2d(2),
        *_conv_block(4 * width, 8 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    return nn.Sequential(OrderedDict(body=body, head=nn.Linear(8 * width, num_classes)))


def random_flip_and_crop(images: torch.Tensor, *, padding: int = 4, flip: bool = True,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation (and left-right flip) of a batch of images, without Python loops.

    Parameters
    ----------
    images : tensor, shape (n, channels, height, width)
    padding : int, default 4
        Largest shift in pixels: zero-pad by ``padding``, then crop at a random offset.
    flip : bool, default True
        Also flip each image left-right with probability 1/2 (not for digits or text).
    generator : torch.Generator, optional
        Source of randomness (CPU); default PyTorch's global generator.

    Returns
    -------
    tensor, shape (n, channels, height, width)
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    count, _, height, width = images.shape
    if flip:
        flips = torch.rand(count, generator=generator) < 0.5
        images = torch.where(flips.view(-1, 1, 1, 1).to(images.device), images.flip(3), images)
    padded = nn.functional.pad(images, (padding,) * 4)
    rows = torch.randint(0, 2 * padding + 1, (count, 1), generator=generator) + torch.arange(height)
    cols = torch.randint(0, 2 * padding + 1, (count, 1), generator=generator) + torch.arange(width)
    batch = torch.arange(count)[:, None, None]
    rows, cols = rows.to(images.device), cols.to(images.device)
    cropped = padded.permute(0, 2, 3, 1)[batch.to(images.device), rows[:, :, None], cols[:, None, :]]
    return cropped.permute(0, 3, 1, 2)


def _train_cifar5_source(model: nn.Module, *, epochs: int, smoke: bool, seed: int) -> dict:
    from .config import torch_device
    from .train import LearningRateScheduler, evaluate, fit

    split = cifar5_source_split()
    train_data = (split["x_train"], split["y_train"])
    val_data = (split["x_val"], split["y_val"])
    if smoke:
        train_data = (train_data[0][:256], train_data[1][:256])
        val_data = (val_data[0][:256], val_data[1][:256])
    device = torch_device()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    scheduler = LearningRateScheduler(
        lambda optim: torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=epochs))
    generator = torch.Generator().manual_seed(seed)
    fit(model, train_data, val_data, epochs=epochs, optimizer=optimizer, batch_size=128,
        callbacks=[scheduler], seed=seed, device=device, progress=False,
        transform=lambda images: random_flip_and_crop(images, padding=4, generator=generator))
    model.to("cpu")
    scores = evaluate(model, val_data, device="cpu")
    return {"val_accuracy": scores["accuracy"], "val_loss": scores["loss"]}


# --------------------------------------------------------------------------- SimCLR (notebook 12)
def nt_xent_loss(projections_a: torch.Tensor, projections_b: torch.Tensor, *,
                 temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent loss for a batch of positive pairs (vectorized).

    Row ``k`` of ``projections_a`` and row ``k`` of ``projections_b`` are two views of one
    example; the other ``2n - 2`` rows of the batch are its negatives.

    Parameters
    ----------
    projections_a, projections_b : Tensor, shape (n, dim)
    temperature : float > 0

    Returns
    -------
    Tensor, shape ()
        The mean over the ``2n`` anchors of ``-log softmax`` of the positive's similarity.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if projections_a.shape != projections_b.shape or projections_a.ndim != 2:
        raise ValueError(f"need two (n, dim) tensors of one shape, got {tuple(projections_a.shape)} "
                         f"and {tuple(projections_b.shape)}")
    count = len(projections_a)
    unit = nn.functional.normalize(torch.cat([projections_a, projections_b]).float(), dim=1)
    logits = unit @ unit.T / temperature
    self_mask = torch.eye(2 * count, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(logits.device)
    return nn.functional.cross_entropy(logits, positives)


class SimCLRModel(nn.Module):
    """An encoder and a projection head; ``forward`` returns the projections.

    Attributes
    ----------
    encoder : nn.Module
        ``(batch, ...) -> (batch, feature_dim)``: the representation kept after pretraining.
    projection_head : nn.Module
        ``(batch, feature_dim) -> (batch, projection_dim)``: used only by the loss.
    """

    def __init__(self, encoder: nn.Module, projection_head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.projection_head = projection_head

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.encoder(inputs))


def _projection_head(feature_dim: int, hidden_dim: int, projection_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(feature_dim, hidden_dim), nn.ReLU(),
                         nn.Linear(hidden_dim, projection_dim))


def _conv1d_block(inputs: int, outputs: int, *, kernel_size: int, stride: int = 1) -> list:
    return [nn.Conv1d(inputs, outputs, kernel_size, stride=stride, padding=kernel_size // 2),
            nn.BatchNorm1d(outputs), nn.ReLU()]


def build_mnist1d_simclr(*, width: int = 64, feature_dim: int = 128) -> SimCLRModel:
    """SimCLR model for MNIST-1D: a 1-D CNN encoder ending in global max pooling, and a head.

    The encoder maps signals (batch, 40) to features (batch, feature_dim); the max over
    positions makes it (nearly) invariant to shifts. The head maps them to 64-d projections.
    """
    encoder = nn.Sequential(
        nn.Unflatten(1, (1, 40)),
        *_conv1d_block(1, width, kernel_size=5),
        *_conv1d_block(width, width, kernel_size=3, stride=2),
        *_conv1d_block(width, width, kernel_size=3, stride=2),
        *_conv1d_block(width, feature_dim, kernel_size=3),
        nn.AdaptiveMaxPool1d(1), nn.Flatten(),
    )
    return SimCLRModel(encoder, _projection_head(feature_dim, feature_dim, 64))


def random_resized_crop_1d(signals: torch.Tensor, *, min_scale: float = 0.6,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop a random window of each signal (a fraction min_scale..1 of it) and stretch it back.

    Linear interpolation at fractional positions; signals (n, length) -> (n, length).
    """
    if not 0 < min_scale <= 1:
        raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
    count, length = signals.shape
    scale = min_scale + (1 - min_scale) * torch.rand(count, 1, generator=generator)
    start = torch.rand(count, 1, generator=generator) * (1 - scale)
    positions = (start + scale * torch.linspace(0, 1, length)[None, :]) * (length - 1)
    positions = positions.to(signals.device)
    left = positions.floor().long().clamp(0, length - 2)
    weight = positions - left
    return torch.gather(signals, 1, left) * (1 - weight) + torch.gather(signals, 1, left + 1) * weight


def mnist1d_simclr_views(signals: torch.Tensor, *, generator: torch.Generator | None = None,
                         max_shift: int = 20, min_scale: float = 0.6, shear: float = 0.5,
                         amplitude: float = 0.2, noise: float = 0.1) -> torch.Tensor:
    """One random view of each MNIST-1D signal (the transformations that made the data).

    Crop-and-stretch, circular shift (``max_shift`` samples), a random linear ramp
    (``shear``), a random gain (1 +- ``amplitude``) and Gaussian noise. Set a strength to 0
    (or ``min_scale=1``) to switch that transformation off. Signals (n, 40) -> (n, 40).
    """
    count, length = signals.shape
    if min_scale < 1:
        signals = random_resized_crop_1d(signals, min_scale=min_scale, generator=generator)
    if max_shift > 0:
        signals = random_circular_shift(signals, max_shift=max_shift, generator=generator)
    ramp = torch.linspace(-1, 1, length)[None, :]
    slopes = shear * (2 * torch.rand(count, 1, generator=generator) - 1)
    gains = 1 + amplitude * (2 * torch.rand(count, 1, generator=generator) - 1)
    noises = noise * torch.randn(count, length, generator=generator)
    return ((signals + (slopes * ramp).to(signals.device)) * gains.to(signals.device)
            + noises.to(signals.device))


def _pretrain_simclr(model: SimCLRModel, inputs: torch.Tensor, *, views: Callable, epochs: int,
                     batch_size: int, learning_rate: float, temperature: float, seed: int,
                     device, max_steps: int | None = None) -> list:
    """SimCLR pretraining loop: two views per example, NT-Xent, AdamW and a cosine schedule.

    Returns the mean loss of each epoch.
    """
    generator = torch.Generator().manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    steps_per_epoch = max(1, len(inputs) // batch_size)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    use_autocast = torch.device(device).type == "cuda"
    losses, step = [], 0
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for batch in range(steps_per_epoch):
            chosen = order[batch * batch_size:(batch + 1) * batch_size].to(inputs.device)
            examples = inputs[chosen].to(device, non_blocking=True)
            both = torch.cat([views(examples, generator=generator), views(examples, generator=generator)])
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_autocast):
                projections = model(both)
            loss = nt_xent_loss(projections[:len(chosen)], projections[len(chosen):],
                                temperature=temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
            step += 1
            if step >= total_steps:
                break
        losses.append(total / (batch + 1))
        if step >= total_steps:
            break
    model.eval()
    return losses


@torch.no_grad()
def encode(model: SimCLRModel, inputs: torch.Tensor, *, batch_size: int = 1024, device="cpu",
           prepare: Callable | None = None, projections: bool = False) -> torch.Tensor:
    """Features of a frozen SimCLR model (encoder output, or the head's with ``projections``).

    ``prepare`` maps a raw batch to model inputs (e.g. uint8 images to floats). Returns a
    float32 CPU tensor of shape (n, dim).
    """
    was_training = model.training
    model.to(device).eval()
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start:start + batch_size].to(device)
        batch = prepare(batch) if prepare is not None else batch
        features = model.encoder(batch)
        outputs.append((model.projection_head(features) if projections else features).float().cpu())
    model.train(was_training)
    return torch.cat(outputs)


def linear_probe_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor,
                          eval_features: torch.Tensor, eval_labels: torch.Tensor, *,
                          steps: int = 300, weight_decay: float = 1e-3, seed: int = 0) -> float:
    """Accuracy of a logistic-regression probe on frozen features.

    Features are standardized with the training features' statistics; the probe is trained
    full-batch with Adam (learning rate 0.01). Shapes (n, dim), (n,), (m, dim), (m,).
    """
    mean = train_features.mean(dim=0)
    scale = train_features.std(dim=0) + 1e-6
    train_inputs = (train_features - mean) / scale
    eval_inputs = (eval_features - mean) / scale
    generator = torch.Generator().manual_seed(seed)
    classes = int(max(train_labels.max(), eval_labels.max())) + 1
    probe = nn.Linear(train_inputs.shape[1], classes)
    with torch.no_grad():
        bound = 1 / train_inputs.shape[1] ** 0.5
        probe.weight.copy_((2 * torch.rand(probe.weight.shape, generator=generator) - 1) * bound)
        probe.bias.zero_()
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=weight_decay)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(probe(train_inputs), train_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((probe(eval_inputs).argmax(dim=1) == eval_labels).float().mean())


@torch.no_grad()
def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor,
                 eval_features: torch.Tensor, eval_labels: torch.Tensor, *,
                 neighbours: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote under cosine similarity (shapes as the probe)."""
    if neighbours < 1 or neighbours > len(train_features):
        raise ValueError(f"neighbours must be in [1, {len(train_features)}], got {neighbours}")
    similarity = (nn.functional.normalize(eval_features, dim=1)
                  @ nn.functional.normalize(train_features, dim=1).T)
    nearest = similarity.topk(neighbours, dim=1).indices
    classes = int(max(train_labels.max(), eval_labels.max())) + 1
    votes = nn.functional.one_hot(train_labels[nearest], classes).sum(dim=1)
    return float((votes.argmax(dim=1) == eval_labels).float().mean())


def supervised_few_labels(model: nn.Module, train_inputs: torch.Tensor, train_labels: torch.Tensor,
                          val_inputs: torch.Tensor, val_labels: torch.Tensor, *, views: Callable,
                          steps: int = 300, learning_rate: float = 2e-3, evaluate_every: int = 50,
                          seed: int = 0, device="cpu", prepare: Callable | None = None) -> float:
    """Train ``model`` (inputs -> logits) from scratch on a few labelled examples; the baseline.

    Full-batch AdamW (weight decay 1e-4) on ``views(inputs)``, a fresh augmentation each
    step. The validation accuracy is measured every ``evaluate_every`` steps and the best
    state is kept (selection on validation data flatters the baseline, never SimCLR).

    Returns
    -------
    float
        The best validation accuracy; ``model`` holds the weights that reached it (eval mode).
    """
    import copy

    if steps < 1 or evaluate_every < 1:
        raise ValueError(f"steps and evaluate_every must be positive, got {steps}, {evaluate_every}")
    prepare = prepare if prepare is not None else (lambda batch: batch)
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    inputs, labels = prepare(train_inputs.to(device)), train_labels.to(device)
    best_accuracy, best_state = -1.0, None
    for step in range(1, steps + 1):
        model.train()
        loss = nn.functional.cross_entropy(model(views(inputs, generator=generator)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % evaluate_every == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                correct = sum(int((model(prepare(val_inputs[start:start + 1000].to(device))).argmax(dim=1)
                                   == val_labels[start:start + 1000].to(device)).sum())
                              for start in range(0, len(val_inputs), 1000))
            accuracy = correct / len(val_inputs)
            if accuracy > best_accuracy:
                best_accuracy, best_state = accuracy, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return best_accuracy


def _few_label_metrics(train_features, train_labels, eval_features, eval_labels, *,
                       per_class_values, seed: int) -> dict:
    """Linear-probe and kNN accuracy with ``per_class`` labelled training examples per class."""
    from .data import stratified_subset

    metrics = {}
    for per_class in per_class_values:
        chosen = torch.from_numpy(stratified_subset(train_labels.numpy(), per_class=per_class, seed=seed))
        arguments = (train_features[chosen], train_labels[chosen], eval_features, eval_labels)
        metrics[f"val_linear_probe_{per_class}"] = linear_probe_accuracy(*arguments, seed=seed)
        metrics[f"val_knn_{per_class}"] = knn_accuracy(*arguments, neighbours=min(5, len(chosen)))
    return metrics


def _train_mnist1d_simclr(model: SimCLRModel, *, epochs: int, smoke: bool, seed: int) -> dict:
    split = mnist1d_split()
    inputs, labels = split["x_train"], split["y_train"]
    val_inputs, val_labels = split["x_val"], split["y_val"]
    if smoke:
        inputs, labels = inputs[:512], labels[:512]
        val_inputs, val_labels = val_inputs[:256], val_labels[:256]
    losses = _pretrain_simclr(model, inputs, views=mnist1d_simclr_views, epochs=epochs,
                              batch_size=128, learning_rate=2e-3, temperature=0.2, seed=seed,
                              device="cpu", max_steps=2 if smoke else None)
    features = encode(model, inputs)
    val_features = encode(model, val_inputs)
    metrics = {"final_loss": losses[-1]}
    metrics.update(_few_label_metrics(features, labels, val_features, val_labels,
                                      per_class_values=(2,) if smoke else (10, 100), seed=seed))
    return metrics


# CIFAR-10: images as float tensors (batch, 3, 32, 32) in 0..1 on the training device.
def cifar10_simclr_split(*, validation_size: int = 5000, seed: int = PRETRAIN_SEED) -> dict:
    """The fixed CIFAR-10 split of the SimCLR encoder: 45k pretraining / 5k validation images.

    Returns
    -------
    dict
        ``x_train`` uint8 tensor (45000, 32, 32, 3), ``y_train`` int64 (45000,), ``x_val``
        (5000, 32, 32, 3), ``y_val`` (5000,). Labels are never used for pretraining.
    """
    from .data import load_cifar10

    data = load_cifar10("train", progress=False)
    order = np.random.default_rng(seed).permutation(len(data.labels))
    train, val = order[validation_size:], order[:validation_size]
    return {"x_train": torch.from_numpy(data.images[train]), "y_train": torch.from_numpy(data.labels[train]),
            "x_val": torch.from_numpy(data.images[val]), "y_val": torch.from_numpy(data.labels[val])}


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (n, 32, 32, 3) -> float32 (n, 3, 32, 32) in 0..1 on the same device."""
    return images.permute(0, 3, 1, 2).float().div(255)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def cifar10_simclr_views(images: torch.Tensor, *, generator: torch.Generator | None = None,
                         min_crop_area: float = 0.2, jitter_strength: float = 0.5,
                         jitter_probability: float = 0.8, grayscale_probability: float = 0.2
                         ) -> torch.Tensor:
    """One SimCLR view of each image, as batched tensor ops (no loop over images).

    Random resized crop (area ``min_crop_area``..1, aspect ratio 3/4..4/3, bilinear via
    ``grid_sample``) with a random horizontal flip; colour jitter (brightness, contrast,
    saturation ``0.8 * jitter_strength``, hue ``0.2 * jitter_strength``) with probability
    ``jitter_probability``; grayscale with probability ``grayscale_probability``. Random
    numbers are drawn on the CPU from ``generator``, so views are the same on any device.

    Parameters
    ----------
    images : Tensor, shape (n, 3, height, width), floats in 0..1
    """
    count = len(images)
    device = images.device

    def uniform(low, high, *shape):
        return (low + (high - low) * torch.rand(count, *shape, generator=generator)).to(device)

    area = uniform(min_crop_area, 1.0)
    log_ratio = uniform(np.log(3 / 4), np.log(4 / 3))
    crop_width = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
    crop_height = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
    center_x = (uniform(-1.0, 1.0)) * (1 - crop_width)
    center_y = (uniform(-1.0, 1.0)) * (1 - crop_height)
    flip = torch.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
    theta = torch.zeros(count, 2, 3, device=device)
    theta[:, 0, 0] = crop_width * flip
    theta[:, 0, 2] = center_x
    theta[:, 1, 1] = crop_height
    theta[:, 1, 2] = center_y
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    views = nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                                      align_corners=False)

    strength = 0.8 * jitter_strength
    jitter = (uniform(0.0, 1.0) < jitter_probability).view(count, 1, 1, 1)
    brightness = uniform(1 - strength, 1 + strength).view(count, 1, 1, 1)
    contrast = uniform(1 - strength, 1 + strength).view(count, 1, 1, 1)
    saturation = uniform(1 - strength, 1 + strength).view(count, 1, 1, 1)
    hue = uniform(-0.2 * jitter_strength, 0.2 * jitter_strength) * 2 * np.pi
    jittered = (views * brightness).clamp(0, 1)
    mean_gray = _grayscale(jittered).mean(dim=(2, 3), keepdim=True)
    jittered = ((jittered - mean_gray) * contrast + mean_gray).clamp(0, 1)
    gray = _grayscale(jittered)
    jittered = ((jittered - gray) * saturation + gray).clamp(0, 1)
    # hue: rotate the chroma plane of YIQ space by a random angle
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          device=device)
    cos, sin = torch.cos(hue), torch.sin(hue)
    rotation = torch.zeros(count, 3, 3, device=device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    transform = torch.linalg.inv(to_yiq) @ rotation @ to_yiq
    jittered = torch.einsum("nij,njhw->nihw", transform, jittered).clamp(0, 1)
    views = torch.where(jitter, jittered, views)

    to_gray = (uniform(0.0, 1.0) < grayscale_probability).view(count, 1, 1, 1)
    return torch.where(to_gray, _grayscale(views).expand_as(views), views)


def _conv2d_block(inputs: int, outputs: int) -> list:
    return [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU()]


def build_cifar10_simclr(*, width: int = 64) -> SimCLRModel:
    """SimCLR model for CIFAR-10: a 6-convolution encoder of width 64 and a projection head.

    The encoder takes float images (batch, 3, 32, 32) in 0..1 (normalized inside) and
    returns 64-d features after global average pooling (~0.2M parameters in all).
    """
    encoder = nn.Sequential(
        _Normalize(mean=(0.491, 0.482, 0.447), std=(0.247, 0.243, 0.262)),
        *_conv2d_block(3, width), *_conv2d_block(width, width), nn.MaxPool2d(2),
        *_conv2d_block(width, width), *_conv2d_block(width, width), nn.MaxPool2d(2),
        *_conv2d_block(width, width), *_conv2d_block(width, width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    return SimCLRModel(encoder, _projection_head(width, 4 * width, 64))


class _Normalize(nn.Module):
    def __init__(self, *, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


def _train_cifar10_simclr(model: SimCLRModel, *, epochs: int, smoke: bool, seed: int) -> dict:
    from .config import torch_device

    split = cifar10_simclr_split()
    inputs, labels = split["x_train"], split["y_train"]
    val_inputs, val_labels = split["x_val"], split["y_val"]
    device = torch.device("cpu") if smoke else torch_device()
    if smoke:
        inputs, labels = inputs[:128], labels[:128]
        val_inputs, val_labels = val_inputs[:128], val_labels[:128]
    on_device = inputs.to(device)  # 45000 uint8 images are 138 MB: keep them on the GPU

    def views(images, *, generator):
        return cifar10_simclr_views(images_to_float(images), generator=generator)

    losses = _pretrain_simclr(model, on_device, views=views, epochs=epochs,
                              batch_size=64 if smoke else 512, learning_rate=2e-3,
                              temperature=0.2, seed=seed, device=device,
                              max_steps=2 if smoke else None)
    features = encode(model, on_device, prepare=images_to_float, device=device)
    val_features = encode(model, val_inputs, prepare=images_to_float, device=device)
    model.to("cpu")
    metrics = {"final_loss": losses[-1]}
    per_class_values = (2,) if smoke else (10, 100)
    metrics.update(_few_label_metrics(features, labels, val_features, val_labels,
                                      per_class_values=per_class_values, seed=seed))
    from .data import stratified_subset

    def supervised_views(images, *, generator):  # crops and flips, no colour distortion
        return cifar10_simclr_views(images, generator=generator, min_crop_area=0.5,
                                    jitter_probability=0.0, grayscale_probability=0.0)

    for per_class in per_class_values:  # the baseline: same encoder, from scratch, labels only
        chosen = torch.from_numpy(stratified_subset(labels.numpy(), per_class=per_class, seed=seed))
        torch.manual_seed(seed)
        baseline = build_cifar10_simclr()
        network = nn.Sequential(baseline.encoder, nn.Linear(64, 10))
        metrics[f"val_supervised_{per_class}"] = supervised_few_labels(
            network, inputs[chosen], labels[chosen], val_inputs, val_labels, views=supervised_views,
            steps=2 if smoke else 1000, evaluate_every=1 if smoke else 100, seed=seed,
            device=device, prepare=images_to_float)
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
                    "train / 400 validation images per class (labutils.pretrain."
                    "cifar5_source_split), random flips and 4-pixel shifts, AdamW 3e-3, "
                    "cosine schedule, batch 128.",
    ),
    "mnist1d_teacher": Recipe(
        build=build_mnist1d_teacher,
        train=_train_mnist1d_teacher,
        epochs={"fast": 50, "full": 50},
        tolerance={"val_accuracy": 0.015, "val_loss": 0.05},
        description="Distillation teacher (notebook 11): 1-D CNN on MNIST-1D, 3200 train / "
                    "800 validation signals (labutils.pretrain.mnist1d_split), random circular "
                    "shifts of up to 4 samples, AdamW 3e-3, cosine schedule, batch 128.",
    ),
    "mnist1d_simclr": Recipe(
        build=build_mnist1d_simclr,
        train=_train_mnist1d_simclr,
        epochs={"fast": 60, "full": 60},
        tolerance={"val_linear_probe_10": 0.04, "val_knn_10": 0.04,
                   "val_linear_probe_100": 0.03, "val_knn_100": 0.03},
        description="SimCLR encoder (notebook 12): 1-D CNN with BatchNorm and global max "
                    "pooling (labutils.pretrain.build_mnist1d_simclr) pretrained without labels "
                    "on the 3200 MNIST-1D training signals of mnist1d_split, views by "
                    "mnist1d_simclr_views (crop-stretch, shift, ramp, gain, noise), NT-Xent at "
                    "temperature 0.2, batch 128, AdamW 2e-3, cosine schedule. Metrics: linear "
                    "probe and 5-NN on the 800 validation signals with 10 or 100 labels per class.",
    ),
    "cifar10_simclr": Recipe(
        build=build_cifar10_simclr,
        train=_train_cifar10_simclr,
        epochs={"fast": 40, "full": 40},
        tolerance={"val_linear_probe_10": 0.04, "val_knn_10": 0.04,
                   "val_linear_probe_100": 0.03, "val_knn_100": 0.03,
                   "val_supervised_10": 0.04, "val_supervised_100": 0.03},
        description="SimCLR encoder (notebook 12), meant for a GPU (~2 min on an H100): "
                    "6-convolution encoder of width 64 (labutils.pretrain.build_cifar10_simclr) "
                    "pretrained without labels on 45,000 CIFAR-10 training images "
                    "(cifar10_simclr_split), views by cifar10_simclr_views (resized crop, flip, "
                    "colour jitter, grayscale), NT-Xent at temperature 0.2, batch 512, AdamW "
                    "2e-3, cosine schedule, bfloat16 autocast on CUDA. Metrics: linear probe and "
                    "5-NN on 5000 held-out images with 10 or 100 labels per class, and the "
                    "baseline: the same encoder trained from scratch on those labels with crops "
                    "and flips (labutils.pretrain.supervised_few_labels, 1000 full-batch steps).",
        needs_gpu=True,
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
            print(f"{name}{' (needs a GPU)' if recipe.needs_gpu else ''}: {recipe.description}")
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
