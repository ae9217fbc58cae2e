"""SimCLR (notebook 12): the NT-Xent loss, encoders, augmented views, pretraining and evaluation.

The method and its evaluation, independent of the checkpoint pipeline (the recipes
``mnist1d_simclr`` and ``cifar10_simclr`` of :mod:`labutils.pretrain` train with these
functions, and notebook 12 imports them).

Loss and models
    :func:`nt_xent_loss`; :class:`SimCLRModel` (``model.encoder`` and
    ``model.projection_head``), built by :func:`build_mnist1d_simclr` (signals (batch, 40))
    and :func:`build_cifar10_simclr` (float images (batch, 3, 32, 32) in 0..1).
Views
    :func:`mnist1d_simclr_views` (with :func:`labutils.augment.random_resized_crop_1d`) and
    :func:`cifar10_simclr_views` (uint8 images become floats with
    :func:`labutils.augment.images_to_float`).
    Each draws its random numbers on the CPU from an optional ``torch.Generator``, so a
    seeded generator gives the same views on any device.
Pretraining and evaluation
    :func:`pretrain_simclr` (two views per example, NT-Xent, AdamW, cosine schedule);
    :func:`encode` (frozen features); :func:`linear_probe_accuracy`, :func:`knn_accuracy` and
    :func:`few_label_metrics` (both, with a few labels per class); the supervised baseline
    :func:`supervised_few_labels`.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .augment import CIFAR10_MEAN, CIFAR10_STD, random_circular_shift, random_resized_crop_1d
from .data import stratified_subset
from .files import atomic_save_torch

__all__ = [
    "SimCLRModel",
    "build_cifar10_classifier",
    "build_cifar10_simclr",
    "cifar10_crop_flip_views",
    "build_mnist1d_simclr",
    "cifar10_simclr_views",
    "encode",
    "few_label_metrics",
    "knn_accuracy",
    "linear_probe_accuracy",
    "mnist1d_simclr_views",
    "nt_xent_loss",
    "pretrain_simclr",
    "supervised_few_labels",
]


# --------------------------------------------------------------------------- loss
def nt_xent_loss(projections_a: torch.Tensor, projections_b: torch.Tensor, *, temperature: float = 0.5) -> torch.Tensor:
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

    Raises
    ------
    ValueError
        If ``temperature <= 0`` or the two tensors are not (n, dim) of one shape.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if projections_a.shape != projections_b.shape or projections_a.ndim != 2:
        raise ValueError(
            f"need two (n, dim) tensors of one shape, got {tuple(projections_a.shape)} and {tuple(projections_b.shape)}"
        )
    count = len(projections_a)
    unit = nn.functional.normalize(torch.cat([projections_a, projections_b]).float(), dim=1)
    logits = unit @ unit.T / temperature
    self_mask = torch.eye(2 * count, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(logits.device)
    return nn.functional.cross_entropy(logits, positives)


# --------------------------------------------------------------------------- models
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
    return nn.Sequential(nn.Linear(feature_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, projection_dim))


def _conv1d_block(inputs: int, outputs: int, *, kernel_size: int, stride: int = 1) -> list:
    return [
        nn.Conv1d(inputs, outputs, kernel_size, stride=stride, padding=kernel_size // 2),
        nn.BatchNorm1d(outputs),
        nn.ReLU(),
    ]


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
        nn.AdaptiveMaxPool1d(1),
        nn.Flatten(),
    )
    return SimCLRModel(encoder, _projection_head(feature_dim, feature_dim, 64))


def _conv2d_block(inputs: int, outputs: int) -> list:
    return [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU()]


def build_cifar10_simclr(*, width: int = 64) -> SimCLRModel:
    """SimCLR model for CIFAR-10: a 6-convolution encoder and a projection head.

    The encoder takes float images (batch, 3, 32, 32) in 0..1 (normalized inside) and
    returns ``width``-d features after global average pooling (~0.2M parameters in all at
    width 64, ~57k at width 32).
    """
    encoder = nn.Sequential(
        _Normalize(mean=CIFAR10_MEAN, std=CIFAR10_STD),
        *_conv2d_block(3, width),
        *_conv2d_block(width, width),
        nn.MaxPool2d(2),
        *_conv2d_block(width, width),
        *_conv2d_block(width, width),
        nn.MaxPool2d(2),
        *_conv2d_block(width, width),
        *_conv2d_block(width, width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return SimCLRModel(encoder, _projection_head(width, 4 * width, 64))


class _Normalize(nn.Module):
    def __init__(self, *, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


# --------------------------------------------------------------------------- views
def mnist1d_simclr_views(
    signals: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    max_shift: int = 20,
    min_scale: float = 0.6,
    shear: float = 0.5,
    amplitude: float = 0.2,
    noise: float = 0.1,
) -> torch.Tensor:
    """One random view of each MNIST-1D signal (the transformations that made the data).

    Crop-and-stretch, circular shift (``max_shift`` samples), a random linear ramp
    (``shear``), a random gain (1 +- ``amplitude``) and Gaussian noise. Set a strength to 0
    (or ``min_scale=1``) to switch that transformation off.

    Parameters
    ----------
    signals : Tensor, shape (n, 40)
    generator : torch.Generator, optional
        Source of randomness (CPU); default PyTorch's global generator.

    Returns
    -------
    Tensor, shape (n, 40)
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
    return (signals + (slopes * ramp).to(signals.device)) * gains.to(signals.device) + noises.to(signals.device)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def cifar10_simclr_views(
    images: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    min_crop_area: float = 0.2,
    jitter_strength: float = 0.5,
    jitter_probability: float = 0.8,
    grayscale_probability: float = 0.2,
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
    generator : torch.Generator, optional
        Source of randomness (CPU); default PyTorch's global generator.

    Returns
    -------
    Tensor, shape (n, 3, height, width), floats in 0..1
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
    views = nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

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
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=device)
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


def cifar10_crop_flip_views(images: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random resized crops (area 0.5..1) and flips only: the supervised baseline's augmentation.

    :func:`cifar10_simclr_views` without colour jitter or grayscale; images (n, 3, h, w) in 0..1.
    """
    return cifar10_simclr_views(
        images, generator=generator, min_crop_area=0.5, jitter_probability=0.0, grayscale_probability=0.0
    )


def build_cifar10_classifier(*, width: int = 64, num_classes: int = 10) -> nn.Module:
    """The encoder of :func:`build_cifar10_simclr` with a linear head, for training from scratch.

    Maps float images (batch, 3, 32, 32) in 0..1 to logits (batch, num_classes).
    """
    return nn.Sequential(build_cifar10_simclr(width=width).encoder, nn.Linear(width, num_classes))


# --------------------------------------------------------------------------- pretraining
def pretrain_simclr(
    model: SimCLRModel,
    inputs: torch.Tensor,
    *,
    views: Callable,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    temperature: float,
    seed: int,
    device,
    max_steps: int | None = None,
    resume_path: str | Path | None = None,
    progress: bool = False,
) -> list:
    """SimCLR pretraining loop: two views per example, NT-Xent, AdamW and a cosine schedule.

    Each epoch shuffles ``inputs`` and drops the last incomplete batch. AdamW has weight
    decay 1e-4; the cosine schedule steps once per batch. On CUDA the forward pass runs
    under bfloat16 autocast. The model ends in eval mode.

    Parameters
    ----------
    model : SimCLRModel
        Trained in place, on ``device``.
    inputs : Tensor, shape (n, ...)
        Unlabelled examples (on any device; batches are moved to ``device``).
    views : callable
        ``views(batch, *, generator) -> Tensor``: one random view of each example of a batch,
        the model's inputs (e.g. :func:`mnist1d_simclr_views`).
    epochs, batch_size : int
    learning_rate, temperature : float
    seed : int
        Seeds the generator of the shuffling and of ``views``.
    device : torch.device or str
    max_steps : int, optional
        Stop after this many optimizer steps (the schedule then spans them).
    resume_path : str or Path, optional
        A file for the training state (model, optimizer, schedule, random generator, losses),
        written atomically after every epoch. If it exists when the call starts, training
        continues from it, and the result is the same as one uninterrupted run. It is
        removed when training ends.
    progress : bool, default False
        Print one line per epoch: loss, seconds per epoch and the estimated time left.

    Returns
    -------
    list of float
        The mean loss of each epoch run.
    """
    generator = torch.Generator().manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    steps_per_epoch = max(1, len(inputs) // batch_size)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    use_autocast = torch.device(device).type == "cuda"
    losses, step = [], 0
    settings = dict(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        temperature=temperature,
        seed=seed,
        max_steps=max_steps,
        examples=len(inputs),
    )
    if resume_path is not None and Path(resume_path).is_file():
        state = torch.load(resume_path, map_location="cpu", weights_only=False)
        if state["settings"] != settings:
            raise ValueError(
                f"{resume_path} holds a run with other settings ({state['settings']}); "
                f"delete it to start afresh with {settings}"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        losses, step = state["losses"], state["step"]
        if progress:
            print(f"resuming from {resume_path} after epoch {len(losses)}/{epochs}", flush=True)
    started, first_epoch = time.perf_counter(), len(losses)
    for epoch in range(first_epoch, epochs):
        if step >= total_steps:
            break
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for batch in range(steps_per_epoch):
            chosen = order[batch * batch_size : (batch + 1) * batch_size].to(inputs.device)
            examples = inputs[chosen].to(device, non_blocking=True)
            both = torch.cat([views(examples, generator=generator), views(examples, generator=generator)])
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_autocast):
                projections = model(both)
            loss = nt_xent_loss(projections[: len(chosen)], projections[len(chosen) :], temperature=temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
            step += 1
            if step >= total_steps:
                break
        losses.append(total / (batch + 1))
        if resume_path is not None:
            state = {
                "settings": settings,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "generator": generator.get_state(),
                "losses": losses,
                "step": step,
            }
            atomic_save_torch(state, resume_path)
        if progress:
            per_epoch = (time.perf_counter() - started) / (epoch + 1 - first_epoch)
            left = per_epoch * (min(epochs, -(-total_steps // steps_per_epoch)) - epoch - 1)
            print(
                f"epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}, {per_epoch:.0f} s/epoch, "
                f"about {left / 60:.0f} min left",
                flush=True,
            )
    if resume_path is not None and Path(resume_path).is_file():
        os.remove(resume_path)
    model.eval()
    return losses


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def encode(
    model: SimCLRModel,
    inputs: torch.Tensor,
    *,
    batch_size: int = 1024,
    device="cpu",
    prepare: Callable | None = None,
    projections: bool = False,
) -> torch.Tensor:
    """Features of a frozen SimCLR model (encoder output, or the head's with ``projections``).

    Parameters
    ----------
    model : SimCLRModel
        Run in eval mode; its training mode is restored afterwards (it stays on ``device``).
    inputs : Tensor, shape (n, ...)
    batch_size : int, default 1024
    device : torch.device or str, default "cpu"
    prepare : callable, optional
        Maps a raw batch (on ``device``) to model inputs, e.g. :func:`labutils.augment.images_to_float`.
    projections : bool, default False
        Return the projection head's outputs instead of the encoder's.

    Returns
    -------
    Tensor, shape (n, dim), float32 on the CPU
    """
    was_training = model.training
    model.to(device).eval()
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size].to(device)
        batch = prepare(batch) if prepare is not None else batch
        features = model.encoder(batch)
        outputs.append((model.projection_head(features) if projections else features).float().cpu())
    model.train(was_training)
    return torch.cat(outputs)


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    eval_features: torch.Tensor,
    eval_labels: torch.Tensor,
    *,
    steps: int = 300,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> float:
    """Accuracy of a logistic-regression probe on frozen features.

    Features are standardized with the training features' statistics (a feature constant on
    the training features keeps scale 1); the probe is trained
    full-batch with Adam (learning rate 0.01) from a uniform initialization drawn from
    ``seed``.

    Parameters
    ----------
    train_features : Tensor, shape (n, dim)
    train_labels : Tensor of int64, shape (n,)
    eval_features : Tensor, shape (m, dim)
    eval_labels : Tensor of int64, shape (m,)
    steps : int, default 300
    weight_decay : float, default 1e-3
    seed : int, default 0

    Returns
    -------
    float
        The fraction of ``eval_labels`` predicted correctly.
    """
    mean = train_features.mean(dim=0)
    spread = train_features.std(dim=0)
    # A feature constant on the training set (a dead ReLU unit) gets scale 1, as in notebook 02's
    # standardizer: dividing by a tiny number would blow up its evaluation values instead.
    scale = torch.where(spread > 0, spread, torch.ones_like(spread))
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
def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    eval_features: torch.Tensor,
    eval_labels: torch.Tensor,
    *,
    neighbours: int = 5,
) -> float:
    """Accuracy of a k-nearest-neighbour vote under cosine similarity.

    Parameters
    ----------
    train_features : Tensor, shape (n, dim)
    train_labels : Tensor of int64, shape (n,)
    eval_features : Tensor, shape (m, dim)
    eval_labels : Tensor of int64, shape (m,)
    neighbours : int, default 5
        Votes per prediction, in [1, n]; a tie goes to the smallest class.

    Returns
    -------
    float
        The fraction of ``eval_labels`` predicted correctly.

    Raises
    ------
    ValueError
        If ``neighbours`` is not in [1, n].
    """
    if neighbours < 1 or neighbours > len(train_features):
        raise ValueError(f"neighbours must be in [1, {len(train_features)}], got {neighbours}")
    similarity = nn.functional.normalize(eval_features, dim=1) @ nn.functional.normalize(train_features, dim=1).T
    nearest = similarity.topk(neighbours, dim=1).indices
    classes = int(max(train_labels.max(), eval_labels.max())) + 1
    votes = nn.functional.one_hot(train_labels[nearest], classes).sum(dim=1)
    return float((votes.argmax(dim=1) == eval_labels).float().mean())


def few_label_metrics(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    eval_features: torch.Tensor,
    eval_labels: torch.Tensor,
    *,
    per_class_values,
    seed: int,
) -> dict:
    """Linear-probe and kNN accuracy with ``per_class`` labelled training examples per class.

    For each ``per_class``, :func:`labutils.data.stratified_subset` picks that many training
    examples of each class (from ``seed``); :func:`linear_probe_accuracy` and
    :func:`knn_accuracy` (``min(5, chosen)`` neighbours) are then measured on all of
    ``eval_features``.

    Parameters
    ----------
    train_features : Tensor, shape (n, dim)
    train_labels : Tensor of int64, shape (n,)
    eval_features : Tensor, shape (m, dim)
    eval_labels : Tensor of int64, shape (m,)
    per_class_values : sequence of int
    seed : int

    Returns
    -------
    dict
        ``val_linear_probe_<per_class>`` and ``val_knn_<per_class>`` for each value.
    """
    metrics = {}
    for per_class in per_class_values:
        chosen = stratified_subset(train_labels, per_class=per_class, seed=seed)
        arguments = (train_features[chosen], train_labels[chosen], eval_features, eval_labels)
        metrics[f"val_linear_probe_{per_class}"] = linear_probe_accuracy(*arguments, seed=seed)
        metrics[f"val_knn_{per_class}"] = knn_accuracy(*arguments, neighbours=min(5, len(chosen)))
    return metrics


def supervised_few_labels(
    model: nn.Module,
    train_inputs: torch.Tensor,
    train_labels: torch.Tensor,
    val_inputs: torch.Tensor,
    val_labels: torch.Tensor,
    *,
    views: Callable,
    steps: int = 300,
    learning_rate: float = 2e-3,
    evaluate_every: int = 50,
    seed: int = 0,
    device="cpu",
    prepare: Callable | None = None,
    history: list | None = None,
    batch_size: int | None = None,
) -> float:
    """Train ``model`` (inputs -> logits) from scratch on a few labelled examples; the baseline.

    AdamW (weight decay 1e-4) on ``views(inputs)``, full-batch unless ``batch_size`` is
    given, a fresh augmentation each step. The validation accuracy is measured every
    ``evaluate_every`` steps and the best state is kept (selection on validation data
    flatters the baseline, never SimCLR).

    Parameters
    ----------
    model : nn.Module
        ``(batch, ...) -> (batch, classes)`` logits; trained in place on ``device``.
    train_inputs : Tensor, shape (n, ...)
    train_labels : Tensor of int64, shape (n,)
    val_inputs : Tensor, shape (m, ...)
    val_labels : Tensor of int64, shape (m,)
    views : callable
        ``views(batch, *, generator) -> Tensor``: a random augmentation of prepared inputs.
    steps : int, default 300
    learning_rate : float, default 2e-3
    evaluate_every : int, default 50
    seed : int, default 0
        Seeds the generator passed to ``views``.
    device : torch.device or str, default "cpu"
    prepare : callable, optional
        Maps raw inputs (on ``device``) to model inputs, e.g. :func:`labutils.augment.images_to_float`.
    history : list, optional
        If given, one dict per evaluation is appended to it: ``step``, ``train_loss`` (of that
        step's augmented batch) and ``val_accuracy``, to show whether training converged.
    batch_size : int, optional
        Train on a random batch of this many examples each step (drawn from the same
        generator) instead of the full batch.

    Returns
    -------
    float
        The best validation accuracy; ``model`` holds the weights that reached it (eval mode).

    Raises
    ------
    ValueError
        If ``steps`` or ``evaluate_every`` is not positive.
    """
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
        if batch_size is None or batch_size >= len(inputs):
            batch_inputs, batch_labels = inputs, labels
        else:
            chosen = torch.randperm(len(inputs), generator=generator)[:batch_size].to(inputs.device)
            batch_inputs, batch_labels = inputs[chosen], labels[chosen]
        loss = nn.functional.cross_entropy(model(views(batch_inputs, generator=generator)), batch_labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % evaluate_every == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                correct = sum(
                    int(
                        (
                            model(prepare(val_inputs[start : start + 1000].to(device))).argmax(dim=1)
                            == val_labels[start : start + 1000].to(device)
                        ).sum()
                    )
                    for start in range(0, len(val_inputs), 1000)
                )
            accuracy = correct / len(val_inputs)
            if history is not None:
                history.append({"step": step, "train_loss": loss.item(), "val_accuracy": accuracy})
            if accuracy > best_accuracy:
                best_accuracy, best_state = accuracy, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return best_accuracy
