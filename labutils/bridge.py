"""Copy a PyTorch model's weights into its Keras 3 twin, so the two can be checked against each other.

The notebooks build the same network in both frameworks and compare their outputs. The layers
hold the same numbers in different layouts:

==================  ===============================  ==================================
layer               PyTorch                          Keras
==================  ===============================  ==================================
dense / linear      weight ``(out, in)``, bias       kernel ``(in, out)``, bias
2-D convolution     weight ``(out, in, kh, kw)``     kernel ``(kh, kw, in, out)``
batch norm          weight, bias, running mean/var   gamma, beta, moving mean/variance
==================  ===============================  ==================================

and a dense layer after ``Flatten`` on convolution features sees them in channel-major order
``(C, H, W)`` in PyTorch but channels-last ``(H, W, C)`` in Keras, so its kernel's rows are
reordered. This module does not import Keras: it reads each Keras layer's class name and
calls ``layer.set_weights``.
"""

from __future__ import annotations

import math

import numpy as np
from torch import nn

__all__ = ["torch_to_keras"]

_TORCH_TYPES = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)
_KERAS_TYPES = {"Dense": nn.Linear, "Conv2D": nn.Conv2d, "BatchNormalization": (nn.BatchNorm1d, nn.BatchNorm2d)}


def _torch_layers(model: nn.Module) -> list:
    """The modules of ``model`` that hold weights, in registration (= forward, for Sequential) order."""
    return [module for module in model.modules() if isinstance(module, _TORCH_TYPES)]


def _keras_layers(model) -> list:
    """The layers of a Keras model (nested models flattened) that hold weights, in order."""
    if not hasattr(model, "layers"):
        return [model] if model.weights else []
    layers = []
    for layer in model.layers:
        layers.extend(_keras_layers(layer))
    return layers


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _dense_kernel(linear: nn.Linear, *, channels: int | None) -> np.ndarray:
    """Keras kernel (in, out) of ``linear``; rows reordered from (C, H, W) to (H, W, C) after a flatten."""
    weight = _numpy(linear.weight)  # (out, in)
    if channels is None or linear.in_features == channels:
        return weight.T
    positions = linear.in_features // channels
    side = math.isqrt(positions)
    if channels * side * side != linear.in_features:
        raise ValueError(
            f"a Linear layer with {linear.in_features} inputs follows a convolution with {channels} channels: "
            "expected channels x side x side inputs (a square feature map flattened)"
        )
    return weight.reshape(-1, channels, side, side).transpose(2, 3, 1, 0).reshape(linear.in_features, -1)


def torch_to_keras(torch_model: nn.Module, keras_model) -> None:
    """Copy every weight of ``torch_model`` into ``keras_model``, layer by layer, in order.

    Parameters
    ----------
    torch_model : torch.nn.Module
        A model (or a single layer) made of ``Linear``, ``Conv2d`` and ``BatchNorm1d/2d`` layers
        plus parameter-free ones (activations, pooling, flatten, dropout).
    keras_model : keras.Model or keras.layers.Layer
        Its Keras twin, already built: ``Dense``, ``Conv2D`` and ``BatchNormalization`` layers
        in the same order, channels-last images ``(batch, height, width, channels)``.

    Raises
    ------
    ValueError
        If the two have different numbers or kinds of weight-holding layers, a bias in one and
        not the other, or batch norms with different epsilons (their outputs would differ).
    """
    sources, targets = _torch_layers(torch_model), _keras_layers(keras_model)
    if len(sources) != len(targets):
        raise ValueError(
            f"{len(sources)} PyTorch layers with weights but {len(targets)} Keras layers with weights: "
            "build the Keras twin with the same layers in the same order"
        )
    channels = None  # output channels of the last convolution seen, for a Linear after Flatten
    for index, (source, target) in enumerate(zip(sources, targets)):
        kind = type(target).__name__
        if kind not in _KERAS_TYPES or not isinstance(source, _KERAS_TYPES[kind]):
            raise ValueError(f"layer {index}: cannot copy a PyTorch {type(source).__name__} into a Keras {kind}")
        if isinstance(source, (nn.Linear, nn.Conv2d)):
            has_bias = source.bias is not None
            if has_bias != (len(target.get_weights()) == 2):
                raise ValueError(f"layer {index}: the bias is in one framework's {kind} and not the other's")
            if isinstance(source, nn.Conv2d):
                kernel = _numpy(source.weight).transpose(2, 3, 1, 0)
                channels = source.out_channels
            else:
                kernel = _dense_kernel(source, channels=channels)
                channels = None
            target.set_weights([kernel] + ([_numpy(source.bias)] if has_bias else []))
        else:
            if not math.isclose(source.eps, target.epsilon, rel_tol=1e-6):
                raise ValueError(
                    f"layer {index}: BatchNorm eps {source.eps} vs Keras epsilon {target.epsilon}; "
                    f"build the Keras layer with epsilon={source.eps}"
                )
            target.set_weights(
                [_numpy(tensor) for tensor in (source.weight, source.bias, source.running_mean, source.running_var)]
            )
