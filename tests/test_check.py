"""Exercise checks: kind, precise messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labutils.check import (
    CheckFailed,
    check_array,
    check_callable,
    check_defined,
    check_raises,
    check_scalar,
    check_true,
)


def test_check_array_accepts_right_answers(capsys):
    check_array(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), name="z")
    assert "✓ z is correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer, pattern",
    [
        (None, "still None: write your solution"),
        (np.zeros((2, 3)), r"shape \(2, 3\) but the expected answer has shape \(3, 2\)"),
        (np.full((3, 2), np.nan), "contains NaN"),
        (np.ones((3, 2)) * [1, 2], r"differs .* in 3 of 6 entries.*index \(0, 1\)"),
        (np.array([["a", "b"]] * 3), "expected numbers"),
    ],
)
def test_check_array_explains_what_differs(answer, pattern):
    with pytest.raises(CheckFailed, match=pattern):
        check_array(answer, np.ones((3, 2)), name="answer")


def test_check_array_dtype_and_failure_is_an_assertion():
    with pytest.raises(AssertionError, match="dtype"):
        check_array(np.array([1.0]), np.array([1]), check_dtype=True)


def test_check_scalar_and_check_true(capsys):
    check_scalar(np.float32(0.5), 0.5, name="loss")
    with pytest.raises(CheckFailed, match="loss = 0.4, expected 0.5"):
        check_scalar(0.4, 0.5, name="loss")
    with pytest.raises(CheckFailed, match="single number"):
        check_scalar([1, 2], 1.0)
    check_true(True, "gap shrinks", name="gap")
    with pytest.raises(CheckFailed, match="gap: gap shrinks"):
        check_true(False, "gap shrinks", name="gap")
    with pytest.raises(CheckFailed, match="write your solution"):
        check_true(None, "anything")


def test_check_defined_stops_unanswered_exercises_first(capsys):
    check_defined(0, name="count")  # a falsy answer is still an answer
    assert capsys.readouterr().out == ""
    for unanswered in (None, ...):
        with pytest.raises(CheckFailed, match="count is still"):
            check_defined(unanswered, name="count")


def test_check_callable_rejects_values_that_are_not_functions():
    check_callable(len, name="len")
    with pytest.raises(CheckFailed, match="is still None"):
        check_callable(None, name="kfold_indices")
    with pytest.raises(CheckFailed, match="should be a function, got int"):
        check_callable(3, name="kfold_indices")


def _needs_positive(value):
    if value <= 0:
        raise ValueError("value must be positive")
    return value


def test_check_raises_requires_the_named_error(capsys):
    check_raises(ValueError, _needs_positive, 0, message="zero raises ValueError", name="needs_positive")
    assert "✓ needs_positive: zero raises ValueError" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="returned without raising ValueError"):
        check_raises(ValueError, _needs_positive, 1, message="one raises", name="needs_positive")
    with pytest.raises(CheckFailed, match="it raised TypeError"):
        check_raises(ValueError, _needs_positive, "a", message="a string raises ValueError", name="needs_positive")
    with pytest.raises(CheckFailed, match="is still None"):
        check_raises(ValueError, None, 0, message="anything", name="needs_positive")
