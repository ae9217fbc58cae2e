"""Plots draw without errors and validate their input."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from labutils import plot


def test_plot_history_from_dict_and_keras_like_object():
    history = {
        "loss": [1.0, 0.5],
        "val_loss": [1.1, 0.7],
        "accuracy": [0.5, 0.8],
        "val_accuracy": [0.4, 0.7],
        "lr": [0.1, 0.1],
    }
    axes = plot.plot_history(history, title="run")
    assert [axis.get_ylabel() for axis in axes] == ["loss", "accuracy"]

    class History:
        pass

    keras_like = History()
    keras_like.history = history
    plot.plot_history(keras_like, metrics=["loss"], axes=[axes[0]], label="second")
    with pytest.raises(ValueError, match="has no"):
        plot.plot_history(history, metrics=["f1"])
    with pytest.raises(TypeError):
        plot.plot_history([1, 2])
    plt.close("all")


def test_show_images_accepts_common_layouts():
    plot.show_images(np.zeros((3, 8, 8), dtype=np.uint8), titles=["a", "b", "c"])
    plot.show_images(torch.rand(5, 3, 8, 8), ncols=2)
    plot.show_images(np.random.default_rng(0).normal(size=(2, 8, 8, 3)))
    with pytest.raises(ValueError, match="titles"):
        plot.show_images(np.zeros((3, 8, 8)), titles=["a"])
    with pytest.raises(ValueError, match="shape"):
        plot.show_images(np.zeros((8, 8)))
    plt.close("all")


def test_confusion_matrix_rows_sum_to_one():
    matrix = plot.plot_confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], class_names=["a", "b", "c"])
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    counts = plot.plot_confusion_matrix([0, 1], [0, 0], normalize=False)
    assert counts.tolist() == [[1, 0], [1, 0]]
    with pytest.raises(ValueError, match="differ in shape"):
        plot.plot_confusion_matrix([0, 1], [0])
    plt.close("all")


def test_show_images_symmetric_puts_zero_in_the_middle():
    signed = np.array([[[-2.0, 0.0], [1.0, 2.0]]])
    figure = plot.show_images(signed, symmetric=True)
    drawn = figure.axes[0].images[0]
    assert drawn.get_clim() == pytest.approx((-2.0, 2.0), rel=1e-6)
    assert drawn.get_cmap().name == "RdBu_r"
    rgb = plot.show_images(np.stack([np.full((2, 2, 3), -1.0), np.full((2, 2, 3), 0.5)]), symmetric=True)
    np.testing.assert_allclose(rgb.axes[0].images[0].get_array()[0, 0], 0.0, atol=1e-9)
    np.testing.assert_allclose(rgb.axes[1].images[0].get_array()[0, 0], 1.0, atol=1e-9)
    plt.close("all")


def test_course_style_uses_a_colour_blind_safe_cycle():
    import matplotlib as mpl

    from labutils import config, plot

    config.settings(fast={"x": 1}, full={"x": 2}, active_profile="fast")
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    assert [colour.lower() for colour in colours] == [colour.lower() for colour in plot.OKABE_ITO]
