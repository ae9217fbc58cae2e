"""Feature scaling fitted on training data: the library version of notebook 02's teaching code.

Notebook 02 derives z-scores and writes ``fit_standardizer`` and ``apply_affine`` from
scratch, then checks them against these functions, scikit-learn's ``StandardScaler``,
PyTorch and Keras. Later notebooks import them from here::

    train_inputs, val_inputs = standardize(train_inputs, val_inputs)

The statistics always come from the first (training) array; the others are transformed with
them, so no information from validation or test data leaks into the scaling.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_affine", "fit_standardizer", "standardize"]


def fit_standardizer(features) -> tuple[np.ndarray, np.ndarray]:
    """Fit z-score statistics on training features.

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)

    Returns
    -------
    mean, scale : ndarray of float64, shape (n_features,)
        ``scale`` is the population standard deviation (``ddof=0``, as ``StandardScaler``),
        with 0 replaced by 1 for constant features, which therefore stay at 0 after centering.

    Raises
    ------
    ValueError
        If ``features`` is not a non-empty 2-D array.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"features must be a non-empty 2-D array, got shape {features.shape}")
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def apply_affine(features, offset, scale) -> np.ndarray:
    """Return ``(features - offset) / scale`` in float64, broadcasting over rows.

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)
    offset, scale : array-like, shape (n_features,)

    Returns
    -------
    ndarray of float64, shape (n_samples, n_features)

    Raises
    ------
    ValueError
        If the shapes do not match, or ``scale`` has a zero.
    """
    features = np.asarray(features, dtype=np.float64)
    offset, scale = np.asarray(offset, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    if features.ndim != 2 or offset.shape != (features.shape[1],) or scale.shape != offset.shape:
        raise ValueError(
            f"features must be (n, d) with offset and scale of shape (d,); got {features.shape}, "
            f"{offset.shape} and {scale.shape}"
        )
    if np.any(scale == 0):
        raise ValueError("scale has a zero; fit_standardizer replaces a zero spread by 1")
    return (features - offset) / scale


def standardize(train, *others, dtype=np.float64) -> list[np.ndarray]:
    """Z-score ``train`` and each of ``others`` with the statistics of ``train``.

    Parameters
    ----------
    train : array-like, shape (n_train, n_features)
        The training features: the only data the statistics are computed from.
    *others : array-like, shape (n_i, n_features)
        Validation or test features, transformed with the training statistics.
    dtype : NumPy dtype, default float64
        The dtype of the returned arrays (``np.float32`` for PyTorch models).

    Returns
    -------
    list of ndarray
        ``[train_standardized, *others_standardized]``, same shapes as the inputs.

    Examples
    --------
    >>> train, test = standardize([[0.0, 5.0], [2.0, 5.0]], [[4.0, 5.0]])
    >>> train.tolist(), test.tolist()
    ([[-1.0, 0.0], [1.0, 0.0]], [[3.0, 0.0]])
    """
    mean, scale = fit_standardizer(train)
    return [apply_affine(array, mean, scale).astype(dtype, copy=False) for array in (train, *others)]
