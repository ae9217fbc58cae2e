"""Friendly checks for exercises: compare a learner's answer with the expected one.

Each check prints a short confirmation when the answer is right and raises
:class:`CheckFailed` (an ``AssertionError``) with a precise, kind message when it is not::

    check_array(z_train, expected, name="z_train")
    # CheckFailed: z_train has shape (100, 3) but the expected answer has shape (100, 4).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CheckFailed",
    "check_array",
    "check_callable",
    "check_defined",
    "check_raises",
    "check_scalar",
    "check_true",
]


class CheckFailed(AssertionError):
    """The answer differs from the expected one; the message says how."""


def _not_answered(value, name: str) -> None:
    if value is None or value is Ellipsis:
        raise CheckFailed(
            f"{name} is still {value!r}: write your solution in the cell above, run it, then run this check again."
        )


def check_defined(value, *, name: str) -> None:
    """Check that the learner has written an answer: ``value`` is neither None nor ``...``.

    Put it first in a check cell, so that the later checks never meet ``None`` (and fail with a
    ``TypeError``) before the learner sees what to do. Prints nothing when the answer exists;
    the checks after it speak.

    Example: ``check_defined(erased, name="erased")`` then ``check_true(erased.shape == ..., ...)``.
    """
    _not_answered(value, name)


def check_callable(value, *, name: str) -> None:
    """Check that ``value`` is a function the learner has written (see :func:`check_defined`).

    Raises
    ------
    CheckFailed
        If ``value`` is None or ``...`` (not written yet) or cannot be called.
    """
    _not_answered(value, name)
    if not callable(value):
        raise CheckFailed(f"{name} should be a function, got {type(value).__name__} {value!r}.")


def check_raises(error: type[BaseException], function, *args, message: str, name: str = "answer", **kwargs) -> None:
    """Check that ``function(*args, **kwargs)`` raises ``error``; ``message`` says when it should.

    Example: ``check_raises(ValueError, kfold_indices, 7, 8, message="more folds than samples raises ValueError")``.

    Raises
    ------
    CheckFailed
        If the call returns normally, or raises an exception of another type.
    """
    _not_answered(function, name)
    try:
        function(*args, **kwargs)
    except error:
        print(f"✓ {name}: {message}")
        return
    except Exception as other:  # a wrong kind of error is a wrong answer, reported as such
        raise CheckFailed(f"{name}: {message}; it raised {type(other).__name__}: {other}") from other
    raise CheckFailed(f"{name}: {message}; it returned without raising {error.__name__}.")


def _to_numpy(value):
    if hasattr(value, "detach"):  # torch tensors
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tf tensors
        value = value.numpy()
    return np.asarray(value)


def check_array(
    answer, expected, *, name: str = "answer", rtol: float = 1e-5, atol: float = 1e-8, check_dtype: bool = False
) -> None:
    """Check that an array (NumPy, PyTorch or TensorFlow) equals the expected one.

    Parameters
    ----------
    answer, expected : array-like
    name : str
        How the message refers to the answer.
    rtol, atol : float
        Tolerances as in ``np.allclose``.
    check_dtype : bool, default False
        Also require the same dtype kind (integer, float, bool).

    Raises
    ------
    CheckFailed
        Naming the first difference: missing answer, shape, dtype, or values (with the
        number of mismatches, the largest error and where it is).
    """
    _not_answered(answer, name)
    answer, expected = _to_numpy(answer), _to_numpy(expected)
    if answer.shape != expected.shape:
        raise CheckFailed(f"{name} has shape {answer.shape} but the expected answer has shape {expected.shape}.")
    if check_dtype and answer.dtype.kind != expected.dtype.kind:
        raise CheckFailed(f"{name} has dtype {answer.dtype}, expected a {expected.dtype} array.")
    if not np.issubdtype(answer.dtype, np.number) and answer.dtype != bool:
        raise CheckFailed(f"{name} has dtype {answer.dtype}; expected numbers.")
    answer_f, expected_f = answer.astype(float), expected.astype(float)
    if np.isnan(answer_f).any() and not np.isnan(expected_f).any():
        raise CheckFailed(
            f"{name} contains NaN ({int(np.isnan(answer_f).sum())} entries); "
            "look for a division by zero or a log of zero."
        )
    close = np.isclose(answer_f, expected_f, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        error = np.abs(answer_f - expected_f)
        error[close] = 0
        where = np.unravel_index(np.nanargmax(error), error.shape) if error.ndim else ()
        raise CheckFailed(
            f"{name} differs from the expected answer in {int((~close).sum())} of "
            f"{close.size} entries (rtol={rtol}, atol={atol}). Largest difference at index "
            f"{tuple(int(i) for i in where)}: got {answer_f[where]!r}, expected "
            f"{expected_f[where]!r}."
        )
    print(f"✓ {name} is correct")


def check_scalar(answer, expected: float, *, name: str = "answer", rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """Check one number against the expected value (see :func:`check_array`)."""
    _not_answered(answer, name)
    value = _to_numpy(answer)
    if value.size != 1:
        raise CheckFailed(f"{name} should be a single number, got an array of shape {value.shape}.")
    value = float(value.reshape(()))
    if not np.isclose(value, expected, rtol=rtol, atol=atol):
        raise CheckFailed(f"{name} = {value!r}, expected {expected!r} (rtol={rtol}, atol={atol}).")
    print(f"✓ {name} is correct")


def check_true(condition, message: str, *, name: str = "answer") -> None:
    """Check a claim about the answer; ``message`` explains what should hold.

    Example: ``check_true(val_acc > 0.8, "validation accuracy should exceed 0.8")``.
    """
    _not_answered(condition, name)
    if not bool(condition):
        raise CheckFailed(f"{name}: {message}")
    print(f"✓ {name}: {message}")
