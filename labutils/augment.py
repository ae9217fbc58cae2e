"""Batched data augmentations and image conversions, written as tensor operations.

Every function draws its random numbers on the CPU from an optional ``torch.Generator``, so a
seeded generator gives the same result on any device, and none loops over examples in Python.
This module depends on PyTorch alone: :mod:`labutils.data`, :mod:`labutils.simclr` and
:mod:`labutils.pretrain` build on it.

Signals (shape (n, length))
    :func:`random_circular_shift`, :func:`random_resized_crop_1d`.
Images (shape (n, channels, height, width))
    :func:`random_flip_and_crop`; :func:`images_to_float` (uint8 NHWC to float NCHW in 0..1)
    and :func:`cifar_images_to_tensor` (the same, standardized with :data:`CIFAR10_MEAN` and
    :data:`CIFAR10_STD`, the one copy of CIFAR-10's channel statistics in the course).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "cifar_images_to_tensor",
    "images_to_float",
    "random_circular_shift",
    "random_flip_and_crop",
    "random_resized_crop_1d",
]

#: CIFAR-10's per-channel mean and standard deviation of pixel values in 0..1 (training set).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


# --------------------------------------------------------------------------- signals
def random_circular_shift(
    signals: torch.Tensor, *, max_shift: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each signal (rows of shape (n, length)) circularly by a random -max_shift..max_shift."""
    count, length = signals.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (count, 1), generator=generator)
    positions = (torch.arange(length)[None, :] - shifts.to(signals.device)) % length
    return torch.gather(signals, 1, positions)


def random_resized_crop_1d(
    signals: torch.Tensor, *, min_scale: float = 0.6, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Crop a random window of each signal (a fraction min_scale..1 of it) and stretch it back.

    Linear interpolation at fractional positions.

    Parameters
    ----------
    signals : Tensor, shape (n, length)
    min_scale : float in (0, 1], default 0.6
        Smallest window, as a fraction of the signal.
    generator : torch.Generator, optional
        Source of randomness (CPU); default PyTorch's global generator.

    Returns
    -------
    Tensor, shape (n, length)
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


# --------------------------------------------------------------------------- images
def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (n, 32, 32, 3) -> float32 (n, 3, 32, 32) in 0..1 on the same device."""
    return images.permute(0, 3, 1, 2).float().div(255)


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


def random_flip_and_crop(
    images: torch.Tensor, *, padding: int = 4, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
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
