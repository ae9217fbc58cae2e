"""A small PyTorch training loop with Keras-like history and callbacks.

The loop is deliberately short enough to read in one sitting::

    for epoch in range(epochs):
        model.train()
        for inputs, targets in batches(train_data, shuffle=True):
            optimizer.zero_grad()
            loss = loss_fn(model(transform(inputs)), targets)
            loss.backward()
            optimizer.step()
        model.eval()
        history += evaluate(model, val_data)
        callbacks.on_epoch_end(...)

Data stays in tensors (no worker processes), so it works the same in notebooks, on
Windows and under the test suite. ``train_data`` is a pair ``(inputs, targets)`` of arrays
or tensors, or any iterable of ``(inputs, targets)`` batches such as a ``DataLoader``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .files import atomic_save_torch

__all__ = [
    "Callback",
    "EarlyStopping",
    "LearningRateScheduler",
    "fit",
    "evaluate",
    "predict",
    "accuracy",
    "save_state",
    "load_state",
    "count_parameters",
]

History = dict  # {"loss": [...], "val_loss": [...], "accuracy": [...], ...}


# --------------------------------------------------------------------------- metrics
def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max output equals the integer target.

    Parameters
    ----------
    outputs : Tensor, shape (batch, classes)
        Logits or probabilities.
    targets : Tensor of int, shape (batch,)
    """
    return (outputs.argmax(dim=1) == targets).float().mean().item()


METRICS: dict[str, Callable] = {"accuracy": accuracy}


def _metric_functions(metrics) -> dict[str, Callable]:
    if metrics is None:
        return {}
    if isinstance(metrics, str):
        metrics = [metrics]
    if isinstance(metrics, dict):
        return dict(metrics)
    functions = {}
    for metric in metrics:
        if isinstance(metric, str):
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}, or pass a function")
            functions[metric] = METRICS[metric]
        elif callable(metric):
            functions[metric.__name__] = metric
        else:
            raise TypeError(f"a metric is a name or a function, got {metric!r}")
    return functions


# --------------------------------------------------------------------------- batching
def _as_tensor(array) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array
    return torch.as_tensor(np.asarray(array))


def _batches(data, *, batch_size: int, shuffle: bool, generator: torch.Generator | None):
    """Yield (inputs, targets) batches from a pair of tensors or an iterable of batches."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], (tuple, list)):
        inputs, targets = _as_tensor(data[0]), _as_tensor(data[1])
        if len(inputs) != len(targets):
            raise ValueError(f"inputs and targets differ in length: {len(inputs)} vs {len(targets)}")
        count = len(inputs)
        order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            yield inputs[index], targets[index]
    else:
        yield from data


def _num_examples(data) -> int | None:
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return len(data[0])
    dataset = getattr(data, "dataset", None)
    return len(dataset) if dataset is not None else None


# --------------------------------------------------------------------------- callbacks
class Callback:
    """Base class: override the hooks you need. ``self.trainer`` is set by :func:`fit`.

    ``trainer`` has the attributes ``model``, ``optimizer``, ``history`` and
    ``stop_training`` (set it to True to end training after this epoch).
    """

    trainer = None

    def on_train_begin(self) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self) -> None:
        pass


# Metric names whose direction ``mode="auto"`` knows (after removing a ``val_`` prefix).
# Keras asks the metric object itself and raises when it cannot tell; so does this table.
MAXIMIZED_METRICS = (
    "accuracy",
    "acc",
    "auc",
    "precision",
    "recall",
    "f1",
    "f1_score",
    "r2",
    "r2_score",
    "balanced_accuracy",
    "top_k_accuracy",
)
MINIMIZED_METRICS = (
    "mae",
    "mse",
    "rmse",
    "error",
    "mean_absolute_error",
    "mean_squared_error",
    "root_mean_squared_error",
    "perplexity",
)


def _auto_mode(monitor: str) -> str:
    name = monitor.removeprefix("val_")
    if "loss" in name or name in MINIMIZED_METRICS:
        return "min"
    if name in MAXIMIZED_METRICS:
        return "max"
    raise ValueError(
        f"EarlyStopping cannot tell whether {monitor!r} should be minimized or maximized: "
        f"pass mode='min' (errors, distances) or mode='max' (accuracy-like scores)"
    )


def _is_improvement(current: float, best: float | None, *, mode: str, min_delta: float) -> bool:
    if best is None:
        return True
    if mode == "min":
        return current < best - min_delta
    return current > best + min_delta


class EarlyStopping(Callback):
    """Stop when a monitored value has not improved for ``patience`` epochs.

    Same rule as ``keras.callbacks.EarlyStopping``: an epoch improves when the value beats
    the best so far by more than ``min_delta``; training stops at the end of the epoch where
    ``patience`` epochs have passed without improvement.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the history.
    patience : int, default 5
    min_delta : float, default 0.0
        Smallest change that counts as an improvement (non-negative).
    mode : {"auto", "min", "max"}, default "auto"
        ``auto`` minimizes names containing "loss" and known errors (``mae``, ``mse``, ...),
        maximizes known scores (``accuracy``, ``auc``, ...) and raises ``ValueError`` for
        any other name, as Keras does: guessing the direction wrong stops training at the
        wrong epoch without any error.
    restore_best_weights : bool, default True
        Load the weights of the best epoch when training ends.

    Attributes
    ----------
    best : float
    best_epoch : int
        0-based epoch of the best value.
    stopped_epoch : int or None
        0-based epoch at which training stopped, None if it ran to the end.
    """

    def __init__(
        self,
        *,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
    ):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode={mode!r}; use 'auto', 'min' or 'max'")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.mode = _auto_mode(monitor) if mode == "auto" else mode
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self) -> None:
        self.best, self.best_epoch, self.stopped_epoch = None, None, None
        self.wait = 0
        self.best_state = None

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which is not logged; "
                f"logged values: {sorted(logs)} (pass val_data to monitor val_ metrics)"
            )
        current = logs[self.monitor]
        self.wait += 1
        if _is_improvement(current, self.best, mode=self.mode, min_delta=self.min_delta):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_state = copy.deepcopy(self.trainer.model.state_dict())
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self) -> None:
        if self.restore_best_weights and self.best_state is not None:
            self.trainer.model.load_state_dict(self.best_state)


class LearningRateScheduler(Callback):
    """Step a ``torch.optim.lr_scheduler`` scheduler once per epoch.

    Parameters
    ----------
    make_scheduler : callable
        ``optimizer -> scheduler``, e.g.
        ``lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)``.
        A ``ReduceLROnPlateau`` scheduler is stepped with the value of ``monitor``.
    monitor : str, default "val_loss"
        Used by ``ReduceLROnPlateau`` only.
    """

    def __init__(self, make_scheduler: Callable, *, monitor: str = "val_loss"):
        if not callable(make_scheduler):
            raise TypeError("make_scheduler must be a function optimizer -> scheduler")
        self.make_scheduler = make_scheduler
        self.monitor = monitor

    def on_train_begin(self) -> None:
        self.scheduler = self.make_scheduler(self.trainer.optimizer)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if self.monitor not in logs:
                raise ValueError(f"ReduceLROnPlateau needs {self.monitor!r} in the logs; have {sorted(logs)}")
            self.scheduler.step(logs[self.monitor])
        else:
            self.scheduler.step()


class _Trainer:
    def __init__(self, model, optimizer, history):
        self.model, self.optimizer, self.history = model, optimizer, history
        self.stop_training = False


# --------------------------------------------------------------------------- loop
def fit(
    model: nn.Module,
    train_data,
    val_data=None,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable = nn.functional.cross_entropy,
    batch_size: int = 64,
    metrics: Sequence | dict | None = ("accuracy",),
    callbacks: Sequence[Callback] = (),
    transform: Callable | None = None,
    device: torch.device | str | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` and return its history, a dict of per-epoch lists.

    Parameters
    ----------
    model : nn.Module
    train_data : (inputs, targets) or iterable of batches
        Inputs of shape (n, ...) and targets of shape (n,) or (n, ...).
    val_data : (inputs, targets) or iterable of batches, optional
        Evaluated after every epoch in ``eval()`` mode; logged as ``val_<name>``.
    epochs : int
    optimizer : torch.optim.Optimizer
    loss_fn : callable, default ``cross_entropy``
        ``loss_fn(outputs, targets) -> scalar``, averaged over the batch.
    batch_size : int, default 64
    metrics : sequence of str or callables, or dict name -> function
        Computed per batch and averaged (weighted by batch size).
    callbacks : sequence of Callback
    transform : callable, optional
        Applied to each training batch of inputs on the device (data augmentation).
        Validation data is never transformed.
    device : torch.device or str, optional
        Default :func:`labutils.config.torch_device`.
    seed : int, optional
        Seeds the shuffling order; default draws from PyTorch's global generator.
    progress : bool, default True
        Show a tqdm bar over epochs.

    Returns
    -------
    dict
        ``loss``, each metric, ``val_`` versions when ``val_data`` is given, ``lr`` and
        ``time`` (seconds per epoch), one value per completed epoch.
    """
    from tqdm.auto import tqdm

    from .config import torch_device

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = torch.device(device) if device is not None else torch_device()
    metric_functions = _metric_functions(metrics)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    model.to(device)
    history: History = {}
    trainer = _Trainer(model, optimizer, history)
    for callback in callbacks:
        callback.trainer = trainer
        callback.on_train_begin()
    bar = tqdm(range(epochs), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        totals = {"loss": 0.0, **{name: 0.0 for name in metric_functions}}
        seen = 0
        for inputs, targets in _batches(train_data, batch_size=batch_size, shuffle=True, generator=generator):
            inputs, targets = inputs.to(device), targets.to(device)
            if transform is not None:
                inputs = transform(inputs)
            optimizer.zero_grad(set_to_none=True)
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}; lower the learning rate")
            loss.backward()
            optimizer.step()
            count = len(targets)
            seen += count
            totals["loss"] += loss.item() * count
            with torch.no_grad():
                for name, function in metric_functions.items():
                    totals[name] += function(outputs, targets) * count
        logs = {name: total / max(seen, 1) for name, total in totals.items()}
        if val_data is not None:
            scores = evaluate(
                model,
                val_data,
                loss_fn=loss_fn,
                metrics=metric_functions,
                batch_size=max(batch_size, 256),
                device=device,
            )
            logs.update({f"val_{name}": value for name, value in scores.items()})
        logs["lr"] = optimizer.param_groups[0]["lr"]
        logs["time"] = time.perf_counter() - started
        for name, value in logs.items():
            history.setdefault(name, []).append(value)
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        bar.set_postfix({key: f"{value:.3g}" for key, value in logs.items() if key not in ("lr", "time")})
        if trainer.stop_training:
            break
    bar.close()
    for callback in callbacks:
        callback.on_train_end()
    model.eval()
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data,
    *,
    loss_fn: Callable | None = nn.functional.cross_entropy,
    metrics: Sequence | dict | None = ("accuracy",),
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict:
    """Evaluate in ``eval()`` mode without gradients; return ``{"loss": ..., metric: ...}``.

    The model's previous train/eval mode is restored afterwards.
    """
    from .config import torch_device

    device = torch.device(device) if device is not None else torch_device()
    metric_functions = _metric_functions(metrics)
    was_training = model.training
    model.eval()
    totals = {name: 0.0 for name in metric_functions}
    if loss_fn is not None:
        totals["loss"] = 0.0
    seen = 0
    for inputs, targets in _batches(data, batch_size=batch_size, shuffle=False, generator=None):
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs)
        count = len(targets)
        seen += count
        if loss_fn is not None:
            totals["loss"] += loss_fn(outputs, targets).item() * count
        for name, function in metric_functions.items():
            totals[name] += function(outputs, targets) * count
    model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate() got no data")
    ordered = {"loss": totals.pop("loss")} if loss_fn is not None else {}
    ordered.update({name: value / seen for name, value in totals.items()})
    if "loss" in ordered:
        ordered["loss"] /= seen
    return ordered


@torch.no_grad()
def predict(
    model: nn.Module, inputs, *, batch_size: int = 256, device: torch.device | str | None = None
) -> torch.Tensor:
    """Return the model's outputs for ``inputs`` (shape (n, ...)) on the CPU, in eval mode."""
    from .config import torch_device

    device = torch.device(device) if device is not None else torch_device()
    inputs = _as_tensor(inputs)
    was_training = model.training
    model.eval()
    outputs = [
        model(inputs[start : start + batch_size].to(device)).cpu() for start in range(0, len(inputs), batch_size)
    ]
    model.train(was_training)
    return torch.cat(outputs)


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------- saving
def save_state(model: nn.Module, path) -> None:
    """Save ``model.state_dict()`` to ``path`` (written atomically)."""
    atomic_save_torch(model.state_dict(), path)


def load_state(model: nn.Module, path, *, device: torch.device | str = "cpu") -> nn.Module:
    """Load a state_dict saved by :func:`save_state` with ``weights_only=True`` (safe)."""
    state = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model
