"""The PyTorch-to-Keras weight bridge: twins compute the same outputs, mismatches are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from labutils.bridge import torch_to_keras

keras = pytest.importorskip("keras")


def test_an_mlp_copied_into_keras_gives_the_same_logits():
    torch.manual_seed(0)
    torch_model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    keras_model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    torch_to_keras(torch_model, keras_model)
    inputs = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(inputs)).numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_model(inputs)), expected, atol=1e-5)


def test_a_cnn_with_batchnorm_and_flatten_gives_the_same_logits():
    torch.manual_seed(0)
    torch_model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(5 * 2 * 2, 3),
    )  # fmt: skip
    with torch.no_grad():  # non-trivial running statistics, so that copying them matters
        torch_model[1].running_mean.uniform_(-1, 1)
        torch_model[1].running_var.uniform_(0.5, 2)
    torch_model.eval()
    keras_model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, padding="same", use_bias=False), keras.layers.BatchNormalization(epsilon=1e-5),
        keras.layers.ReLU(), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(5, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(3),
    ])  # fmt: skip
    torch_to_keras(torch_model, keras_model)
    images = np.random.default_rng(1).normal(size=(4, 3, 8, 8)).astype("float32")
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(images)).numpy()
    got = keras.ops.convert_to_numpy(keras_model(images.transpose(0, 2, 3, 1), training=False))
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_a_single_layer_can_be_copied():
    linear = nn.Linear(4, 2)
    dense = keras.layers.Dense(2)
    dense.build((None, 4))
    torch_to_keras(linear, dense)
    np.testing.assert_allclose(dense.get_weights()[0], linear.weight.detach().numpy().T)


@pytest.mark.parametrize(
    "keras_layers, match",
    [
        (lambda: [keras.layers.Dense(8), keras.layers.Dense(3)], None),
        (lambda: [keras.layers.Dense(8)], "2 PyTorch layers with weights but 1"),
        (lambda: [keras.layers.Dense(8, use_bias=False), keras.layers.Dense(3)], "bias"),
    ],
)
def test_mismatched_twins_are_refused(keras_layers, match):
    torch_model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    keras_model = keras.Sequential([keras.Input((6,))] + keras_layers())
    if match is None:
        torch_to_keras(torch_model, keras_model)
        return
    with pytest.raises(ValueError, match=match):
        torch_to_keras(torch_model, keras_model)


def test_batchnorm_epsilons_must_agree():
    torch_model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    keras_model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])
    with pytest.raises(ValueError, match="epsilon=1e-05"):
        torch_to_keras(torch_model, keras_model)
