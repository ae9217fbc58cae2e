"""Small pieces for training image classifiers on CIFAR-10 subsets (notebook 08).

:func:`cifar_tensors` turns a loaded CIFAR-10 split into float tensors, :class:`Standardize` is
a network's first layer that standardizes each channel with statistics given at construction
(those of the network's *own* training images), :class:`ValidateEvery` is a
:class:`labutils.train.Callback` that records a validation learning curve, and
:func:`expected_calibration_error` with :func:`reliability_bins` measure calibration with
equal-width confidence bins.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .train import Callback, evaluate

__all__ = [
    "Standardize",
    "ValidateEvery",
    "cifar_tensors",
    "expected_calibration_error",
    "reliability_bins",
]


def cifar_tensors(dataset, index) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of ``dataset`` at ``index`` as tensors.

    Parameters
    ----------
    dataset : object with ``images`` (uint8 array, shape (N, height, width, 3)) and ``labels``
        (integer array, shape (N,)), such as ``labutils.data.load_cifar10("train")``
    index : integer array, shape (n,)
        Positions in ``dataset`` (a boolean mask is refused: pass ``np.flatnonzero(mask)``).

    Returns
    -------
    images : Tensor, shape (n, 3, height, width), float32 in [0, 1]
    labels : Tensor of int64, shape (n,)
    """
    index = np.asarray(index)
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"index must be a 1-d integer array, got dtype {index.dtype} and shape {index.shape}")
    images = np.asarray(dataset.images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"dataset.images must be uint8 of shape (N, height, width, 3), got {images.dtype} {images.shape}"
        )
    labels = np.asarray(dataset.labels)
    if labels.shape != (len(images),):
        raise ValueError(f"dataset.labels must have shape ({len(images)},), got {labels.shape}")
    if len(index) and (index.min() < 0 or index.max() >= len(images)):
        raise ValueError(f"index must lie in [0, {len(images)}), got values from {index.min()} to {index.max()}")
    tensor = torch.from_numpy(images[index]).permute(0, 3, 1, 2).float() / 255
    return tensor, torch.from_numpy(labels[index]).long()


class Standardize(nn.Module):
    """Subtract a per-channel mean and divide by a per-channel standard deviation.

    Give each network the statistics of its own training images: a network trained on one
    subset must not standardize with another subset's numbers.

    Parameters
    ----------
    mean, std : array-like, shape (channels,)
        ``std`` must be positive.

    Shapes: input (n, channels, height, width) -> output of the same shape.
    """

    def __init__(self, mean, std):
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float32)
        std = torch.as_tensor(std, dtype=torch.float32)
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError(
                f"mean and std must be 1-d of equal length, got {tuple(mean.shape)} and {tuple(std.shape)}"
            )
        if not bool((std > 0).all()):
            raise ValueError(f"std must be positive, got {std.tolist()}")
        self.register_buffer("mean", mean[:, None, None])
        self.register_buffer("std", std[:, None, None])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected images (n, {self.mean.shape[0]}, height, width), got {tuple(images.shape)}")
        return (images - self.mean) / self.std


class ValidateEvery(Callback):
    """Evaluate the model on ``data`` after every ``every``-th epoch and after the last one.

    Parameters
    ----------
    data : (images, labels)
        Tensors of shapes (n, channels, height, width) and (n,).
    every : int
        Evaluate after epochs every, 2 every, ... (1-based).
    epochs : int
        The number of epochs ``fit`` runs, so that the final model is always evaluated.
    device : torch.device or str, optional
        Where to evaluate; default ``labutils.config.torch_device()``.
    batch_size : int, default 256

    Attributes
    ----------
    epochs_evaluated : list of int
        The (1-based) epochs after which the model was evaluated.
    accuracy : list of float
        The accuracy on ``data`` after each of those epochs.
    """

    def __init__(self, data, *, every: int, epochs: int, device=None, batch_size: int = 256):
        if int(every) != every or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if len(data) != 2 or len(data[0]) != len(data[1]):
            raise ValueError("data must be (images, labels) of equal length")
        self.data, self.every, self.epochs = data, int(every), int(epochs)
        self.device, self.batch_size = device, batch_size
        self.epochs_evaluated: list[int] = []
        self.accuracy: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            self.epochs_evaluated.append(epoch + 1)
            scores = evaluate(self.trainer.model, self.data, device=self.device, batch_size=self.batch_size)
            self.accuracy.append(scores["accuracy"])


def _confidences_and_hits(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities.detach().cpu() if hasattr(probabilities, "detach") else probabilities)
    labels = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
    if probabilities.ndim != 2 or labels.shape != (len(probabilities),):
        raise ValueError(
            f"expected probabilities (n, classes) and labels (n,), got {probabilities.shape} and {labels.shape}"
        )
    if len(labels) == 0:
        raise ValueError("no examples")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= probabilities.shape[1]:
        raise ValueError(f"labels must be integers in [0, {probabilities.shape[1]}), got {labels.dtype} labels")
    if probabilities.min() < 0 or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("each row of probabilities must be non-negative and sum to 1 (pass softmax outputs)")
    confidences = probabilities.max(axis=1).astype(np.float64)
    hits = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    return confidences, hits


def reliability_bins(probabilities, labels, *, bins: int = 15) -> dict:
    """Per-bin confidence and accuracy of the top class, with equal-width confidence bins.

    Bin ``b`` holds the examples whose top probability lies in ``(b/bins, (b+1)/bins]``
    (the first bin also takes confidence 0).

    Parameters
    ----------
    probabilities : array or Tensor, shape (n, classes), rows sum to 1
    labels : array or Tensor of int, shape (n,)
    bins : int, default 15

    Returns
    -------
    dict with arrays of shape (bins,): ``count`` (examples in the bin), ``confidence`` and
    ``accuracy`` (means over the bin; NaN for an empty bin), and ``edges`` of shape (bins + 1,).
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    confidences, hits = _confidences_and_hits(probabilities, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=confidences, minlength=bins) / count
        accuracy = np.bincount(which, weights=hits, minlength=bins) / count
    return dict(count=count, confidence=confidence, accuracy=accuracy, edges=edges)


def expected_calibration_error(probabilities, labels, *, bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence, equal-width bins.

    ``ECE = sum_b (n_b / n) * |accuracy_b - confidence_b|`` over the non-empty bins of
    :func:`reliability_bins` (Naeini et al., 2015; Guo et al., 2017).

    Parameters
    ----------
    probabilities : array or Tensor, shape (n, classes), rows sum to 1
    labels : array or Tensor of int, shape (n,)
    bins : int, default 15

    Returns
    -------
    float in [0, 1]
    """
    table = reliability_bins(probabilities, labels, bins=bins)
    filled = table["count"] > 0
    weights = table["count"][filled] / table["count"].sum()
    return float(np.sum(weights * np.abs(table["accuracy"][filled] - table["confidence"][filled])))
