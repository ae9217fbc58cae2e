"""Plots the notebooks share: learning curves, image grids, confusion matrices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["OKABE_ITO", "plot_history", "show_images", "plot_confusion_matrix", "use_course_style"]

#: Okabe & Ito's colour-blind-safe palette (black first dropped: it is the text colour).
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def use_course_style() -> None:
    """Make matplotlib's default colours (``C0``, ``C1``, ...) the colour-blind-safe Okabe-Ito set.

    :func:`labutils.config.settings` calls it, so every notebook's figures share it.
    """
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams["axes.prop_cycle"] = cycler(color=list(OKABE_ITO))
    mpl.rcParams["image.cmap"] = "viridis"  # perceptually uniform, readable without colour vision


def _history_dict(history) -> dict:
    """Accept a Keras ``History`` object or a dict of per-epoch lists."""
    if hasattr(history, "history") and isinstance(history.history, dict):
        return history.history
    if isinstance(history, dict):
        return history
    raise TypeError(f"expected a Keras History or a dict of lists, got {type(history).__name__}")


def plot_history(
    history, *, metrics: Sequence[str] | None = None, title: str | None = None, axes=None, label: str | None = None
):
    """Plot training and validation curves, one panel per metric.

    Parameters
    ----------
    history : dict of lists, or keras.callbacks.History
        As returned by :func:`labutils.train.fit` or ``keras.Model.fit``.
    metrics : sequence of str, optional
        Which metrics to draw (default: ``loss`` and every other key that has a
        ``val_`` partner, such as ``accuracy``).
    title : str, optional
    axes : sequence of matplotlib Axes, optional
        Draw into these (one per metric), e.g. to overlay several runs.
    label : str, optional
        Prefix for the legend entries, to tell runs apart when overlaying.

    Returns
    -------
    list of Axes
    """
    import matplotlib.pyplot as plt

    logs = _history_dict(history)
    if metrics is None:
        metrics = ["loss"] + [key for key in logs if key != "loss" and f"val_{key}" in logs]
    missing = [name for name in metrics if name not in logs]
    if missing:
        raise ValueError(f"history has no {missing}; it has {sorted(logs)}")
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
        axes = axes[0]
    prefix = f"{label} " if label else ""
    for axis, name in zip(axes, metrics):
        epochs = np.arange(1, len(logs[name]) + 1)
        (line,) = axis.plot(epochs, logs[name], label=f"{prefix}train")
        if f"val_{name}" in logs:
            axis.plot(epochs, logs[f"val_{name}"], "--", color=line.get_color(), label=f"{prefix}validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        axes[0].figure.suptitle(title)
    axes[0].figure.tight_layout()
    return list(axes)


def show_images(
    images,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    size: float = 1.4,
    cmap: str | None = None,
    title: str | None = None,
    symmetric: bool = False,
):
    """Show images in a grid.

    Parameters
    ----------
    images : array, shape (n, height, width), (n, height, width, 3) or (n, 3, height, width)
        uint8 in 0..255 or floats (each image is rescaled to 0..1 for display if needed).
    titles : sequence of str, optional
        One per image.
    ncols : int, default 8
    size : float, default 1.4
        Inches per image.
    cmap : str, optional
        Colormap for single-channel images (default ``"gray"``, or ``"RdBu_r"`` when
        ``symmetric``).
    title : str, optional
        Title over the whole grid.
    symmetric : bool, default False
        For signed images (weights, PCA components, whitening filters, differences): zero
        is drawn as the middle of the colour range (white with the default colormap) and each
        image is scaled by its largest absolute value, so positive and negative parts can be
        compared. Without it a signed image is min-max rescaled and zero lands anywhere.

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)  # channels-first tensors
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (n, h, w) or (n, h, w, 3), got {images.shape}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    count = len(images)
    ncols = max(1, min(ncols, count))
    nrows = int(np.ceil(count / ncols))
    figure, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if title else 0)), squeeze=False
    )
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= count:
            continue
        image = images[index]
        if symmetric:
            largest = float(np.abs(image).max()) + 1e-12
            if image.ndim == 2:
                axis.imshow(image, cmap=cmap or "RdBu_r", vmin=-largest, vmax=largest)
            else:
                axis.imshow(0.5 + image / (2 * largest))
            if titles is not None:
                axis.set_title(titles[index], fontsize=8)
            continue
        if image.dtype != np.uint8:
            low, high = float(image.min()), float(image.max())
            if low < 0 or high > 1:
                image = (image - low) / (high - low + 1e-12)
        axis.imshow(image, cmap=cmap or ("gray" if image.ndim == 2 else None))
        if titles is not None:
            axis.set_title(titles[index], fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_confusion_matrix(
    y_true,
    y_pred,
    *,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    axis=None,
    title: str | None = None,
):
    """Draw a confusion matrix (rows: true class, columns: predicted class).

    Parameters
    ----------
    y_true, y_pred : array of int, shape (n,)
    class_names : sequence of str, optional
    normalize : bool, default True
        Show each row as fractions of that class.

    Returns
    -------
    ndarray, shape (n_classes, n_classes)
        The (possibly normalized) matrix.
    """
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    labels = np.arange(len(class_names)) if class_names is not None else None
    matrix = confusion_matrix(y_true, y_pred, labels=labels).astype(float)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    if axis is None:
        size = 0.45 * matrix.shape[0] + 2
        _, axis = plt.subplots(figsize=(size + 1, size))
    shown = axis.imshow(matrix, cmap="Blues", vmin=0)
    axis.figure.colorbar(shown, ax=axis, fraction=0.046)
    ticks = np.arange(matrix.shape[0])
    names = class_names if class_names is not None else [str(t) for t in ticks]
    axis.set_xticks(ticks, names, rotation=45, ha="right")
    axis.set_yticks(ticks, names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2
    for row in ticks:
        for column in ticks:
            value = matrix[row, column]
            axis.text(
                column,
                row,
                f"{value:.2f}" if normalize else f"{int(value)}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > threshold else "black",
            )
    if title:
        axis.set_title(title)
    return matrix
