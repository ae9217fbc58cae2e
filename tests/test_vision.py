"""labutils.vision: CIFAR tensors, per-network standardization, the validation callback and ECE."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from labutils import train
from labutils.vision import (
    Standardize,
    ValidateEvery,
    cifar_tensors,
    expected_calibration_error,
    reliability_bins,
)


# --------------------------------------------------------------------------- cifar_tensors
def fake_dataset(count: int = 6, size: int = 4):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    return SimpleNamespace(images=images, labels=np.arange(count) % 10)


def test_cifar_tensors_selects_scales_and_moves_channels_first():
    dataset = fake_dataset()
    images, labels = cifar_tensors(dataset, np.array([4, 1]))
    assert images.shape == (2, 3, 4, 4) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.tolist() == [4, 1]
    # pixel (row 2, column 3) of image 4: its red, green and blue values land in channels 0, 1, 2
    expected = torch.from_numpy(dataset.images[4, 2, 3].astype(np.float32) / 255)
    torch.testing.assert_close(images[0, :, 2, 3], expected)
    assert images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.parametrize("index", [np.array([True, False] * 3), np.array([[0, 1]]), np.array([0.0, 1.0])])
def test_cifar_tensors_refuses_masks_and_bad_indices(index):
    with pytest.raises(ValueError, match="index"):
        cifar_tensors(fake_dataset(), index)


def test_cifar_tensors_refuses_channels_first_images():
    dataset = fake_dataset()
    dataset.images = np.ascontiguousarray(dataset.images.transpose(0, 3, 1, 2))  # (n, 3, 4, 4)
    with pytest.raises(ValueError, match="uint8 of shape"):
        cifar_tensors(dataset, np.array([0]))


# --------------------------------------------------------------------------- Standardize
def test_standardize_uses_its_own_per_channel_statistics():
    images = (
        torch.rand(5, 3, 4, 6) * torch.tensor([1.0, 4.0, 9.0])[:, None, None]
        + torch.tensor([0.0, 2.0, -3.0])[:, None, None]
    )
    mean, std = images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3))
    layer = Standardize(mean, std)
    out = layer(images)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-5, rtol=0)
    # two subsets, two layers: each standardizes with the numbers it was given
    other = Standardize(torch.tensor([0.5, 0.5, 0.5]), torch.tensor([2.0, 2.0, 2.0]))
    torch.testing.assert_close(other(images), (images - 0.5) / 2.0)
    assert set(layer.state_dict()) == {"mean", "std"}  # saved with the model, moved by .to()


@pytest.mark.parametrize(
    ("mean", "std"),
    [([0.0, 0.0, 0.0], [1.0, 0.0, 1.0]), ([0.0, 0.0], [1.0, 1.0, 1.0]), ([[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]])],
)
def test_standardize_refuses_bad_statistics(mean, std):
    with pytest.raises(ValueError):
        Standardize(mean, std)


def test_standardize_refuses_images_with_other_channel_counts():
    layer = Standardize([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="expected images"):
        layer(torch.rand(2, 4, 4, 3))  # channels last


# --------------------------------------------------------------------------- ValidateEvery
def test_validate_every_evaluates_on_schedule_and_after_the_last_epoch():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (64,), generator=generator)
    inputs = torch.randn(64, 2, generator=generator) + 3.0 * labels[:, None].float()
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    callback = ValidateEvery((inputs, labels), every=2, epochs=5, device="cpu")
    train.fit(
        model,
        (inputs, labels),
        epochs=5,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        batch_size=16,
        callbacks=[callback],
        device="cpu",
        seed=0,
        progress=False,
    )
    assert callback.epochs_evaluated == [2, 4, 5]
    assert len(callback.accuracy) == 3
    final = train.evaluate(model, (inputs, labels), device="cpu")["accuracy"]
    assert callback.accuracy[-1] == pytest.approx(final)


@pytest.mark.parametrize(("every", "epochs"), [(0, 5), (-1, 5), (1.5, 5), (2, 0)])
def test_validate_every_refuses_bad_schedules(every, epochs):
    data = (torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        ValidateEvery(data, every=every, epochs=epochs)


# --------------------------------------------------------------------------- calibration
def ece_by_loop(probabilities: np.ndarray, labels: np.ndarray, bins: int) -> float:
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    total = 0.0
    for b in range(bins):
        in_bin = (confidence > b / bins) & (confidence <= (b + 1) / bins)
        if b == 0:
            in_bin |= confidence == 0
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return total


def random_probabilities(count: int = 500, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = 3 * rng.standard_normal((count, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities, rng.integers(0, classes, count)


@pytest.mark.parametrize("bins", [1, 5, 15])
def test_ece_matches_the_definition_term_by_term(bins):
    probabilities, labels = random_probabilities()
    assert expected_calibration_error(probabilities, labels, bins=bins) == pytest.approx(
        ece_by_loop(probabilities, labels, bins), abs=1e-12
    )


def test_ece_of_a_hand_computed_example():
    probabilities = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.5, 0.5]])
    labels = np.array([0, 0, 0, 1])
    # two bins: (0, 0.5] holds the 0.5 (predicts class 0, wrong); (0.5, 1] holds 0.9 (right),
    # 0.9 (wrong) and 0.6 (right): accuracy 2/3, confidence 0.8
    expected = 1 / 4 * abs(0.0 - 0.5) + 3 / 4 * abs(2 / 3 - 0.8)
    assert expected_calibration_error(probabilities, labels, bins=2) == pytest.approx(expected)
    table = reliability_bins(probabilities, labels, bins=2)
    assert table["count"].tolist() == [1, 3]
    np.testing.assert_allclose(table["accuracy"], [0.0, 2 / 3])
    np.testing.assert_allclose(table["confidence"], [0.5, 0.8])


def test_ece_is_zero_when_calibrated_and_at_least_the_overconfidence():
    # in each confidence level exactly that fraction is right: perfectly calibrated
    probabilities = np.array([[0.75, 0.25]] * 4 + [[1.0, 0.0]] * 2)
    labels = np.array([0, 0, 0, 1, 0, 0])
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(0.0, abs=1e-12)
    probabilities, labels = random_probabilities(seed=1)
    overconfidence = probabilities.max(axis=1).mean() - (probabilities.argmax(axis=1) == labels).mean()
    assert expected_calibration_error(probabilities, labels, bins=1) == pytest.approx(abs(overconfidence))
    assert expected_calibration_error(probabilities, labels, bins=15) >= abs(overconfidence) - 1e-12


def test_ece_accepts_tensors_and_reports_empty_bins_as_nan():
    probabilities, labels = random_probabilities()
    from_tensors = expected_calibration_error(torch.from_numpy(probabilities), torch.from_numpy(labels))
    assert from_tensors == pytest.approx(expected_calibration_error(probabilities, labels))
    table = reliability_bins(np.array([[0.95, 0.05]]), np.array([0]), bins=10)
    assert table["count"].sum() == 1 and table["count"][9] == 1
    assert np.isnan(table["accuracy"][:9]).all() and table["edges"].shape == (11,)


@pytest.mark.parametrize(
    ("probabilities", "labels", "bins"),
    [
        (np.array([[2.0, -1.0]]), np.array([0]), 10),  # logits, not probabilities
        (np.array([[0.5, 0.4]]), np.array([0]), 10),  # rows do not sum to 1
        (np.array([0.5, 0.5]), np.array([0]), 10),  # one-dimensional
        (np.array([[0.5, 0.5]]), np.array([0, 1]), 10),  # label count differs
        (np.array([[0.5, 0.5]]), np.array([0]), 0),  # no bins
    ],
)
def test_ece_refuses_bad_input(probabilities, labels, bins):
    with pytest.raises(ValueError):
        expected_calibration_error(probabilities, labels, bins=bins)


def test_cifar_tensors_rejects_indices_out_of_range_and_mismatched_labels():
    dataset = SimpleNamespace(images=np.zeros((4, 2, 2, 3), dtype=np.uint8), labels=np.arange(4))
    with pytest.raises(ValueError, match="index must lie in"):
        cifar_tensors(dataset, np.array([0, 4]))
    with pytest.raises(ValueError, match="index must lie in"):
        cifar_tensors(dataset, np.array([-1]))
    with pytest.raises(ValueError, match="labels must have shape"):
        cifar_tensors(SimpleNamespace(images=dataset.images, labels=np.arange(3)), np.array([0]))


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0]), np.array([0, 3]), np.array([-1, 0])])
def test_calibration_error_rejects_labels_that_are_not_class_indices(labels):
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    with pytest.raises(ValueError, match="labels must be integers"):
        expected_calibration_error(probabilities, labels)
