"""Scaling fitted on training data only."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from labutils.preprocessing import apply_affine, fit_standardizer, standardize


def test_standardize_matches_standard_scaler_and_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(loc=3.0, scale=[1.0, 10.0, 0.1], size=(50, 3))
    test = rng.normal(loc=-7.0, scale=2.0, size=(20, 3))  # shifted: its own statistics would differ
    scaler = StandardScaler().fit(train)
    z_train, z_test = standardize(train, test)
    np.testing.assert_allclose(z_train, scaler.transform(train), atol=1e-12)
    np.testing.assert_allclose(z_test, scaler.transform(test), atol=1e-12)
    assert abs(z_test.mean()) > 1  # scaled with the training statistics, not re-centred


def test_constant_features_stay_at_zero_and_dtype_is_honoured():
    train = np.array([[1.0, 4.0], [3.0, 4.0]])
    mean, scale = fit_standardizer(train)
    np.testing.assert_array_equal(scale, [1.0, 1.0])
    (z_train,) = standardize(train, dtype=np.float32)
    assert z_train.dtype == np.float32
    np.testing.assert_array_equal(z_train[:, 1], 0.0)


@pytest.mark.parametrize("features", [np.zeros((0, 3)), np.zeros(4), np.zeros((2, 2, 2))])
def test_fit_standardizer_rejects_what_is_not_a_table(features):
    with pytest.raises(ValueError, match="non-empty 2-D"):
        fit_standardizer(features)


def test_apply_affine_rejects_mismatched_statistics_and_zero_scale():
    with pytest.raises(ValueError, match="shape"):
        apply_affine(np.zeros((2, 3)), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="zero"):
        apply_affine(np.zeros((2, 2)), np.zeros(2), np.array([1.0, 0.0]))
