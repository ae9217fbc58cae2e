"""labutils.augment (batched augmentations) and the fixed splits of labutils.data.

A course about leakage must test its own splits: every split is disjoint, of the stated sizes,
stratified where it says so, and the same on every call.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labutils import augment, data, pretrain, simclr


# --------------------------------------------------------------------------- augmentations
def test_circular_shift_is_a_per_row_roll():
    signals = torch.arange(24.0).reshape(3, 8)
    generator = torch.Generator().manual_seed(0)
    shifted = augment.random_circular_shift(signals, max_shift=3, generator=generator)
    shifts = torch.randint(-3, 4, (3, 1), generator=torch.Generator().manual_seed(0))
    for row, shift in zip(range(3), shifts[:, 0].tolist()):
        torch.testing.assert_close(shifted[row], torch.roll(signals[row], shifts=shift))
    torch.testing.assert_close(augment.random_circular_shift(signals, max_shift=0), signals)


def test_flip_and_crop_identity_determinism_and_content():
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(augment.random_flip_and_crop(images, padding=0, flip=False), images)
    first = augment.random_flip_and_crop(images, generator=torch.Generator().manual_seed(2))
    again = augment.random_flip_and_crop(images, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(first, again)
    assert first.shape == images.shape
    flipped = augment.random_flip_and_crop(images, padding=0, generator=torch.Generator().manual_seed(3))
    for original, result in zip(images, flipped):  # each image is itself or its mirror
        assert torch.equal(result, original) or torch.equal(result, original.flip(2))
    with pytest.raises(ValueError):
        augment.random_flip_and_crop(images, padding=-1)


def test_a_shift_moves_pixels_without_changing_them():
    images = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(4)) + 1  # no zeros
    shifted = augment.random_flip_and_crop(images, padding=2, flip=False, generator=torch.Generator().manual_seed(5))
    for original, result in zip(images, shifted):
        kept = result[result != 0]  # zero padding shows where the image moved out
        assert set(kept.tolist()) <= set(original.flatten().tolist())


def test_image_conversions_share_one_set_of_statistics():
    images = np.full((2, 32, 32, 3), 255, dtype=np.uint8)
    floats = augment.images_to_float(torch.from_numpy(images))
    assert floats.shape == (2, 3, 32, 32) and float(floats.max()) == 1.0
    standardized = augment.cifar_images_to_tensor(images)
    expected = (1 - torch.tensor(augment.CIFAR10_MEAN)) / torch.tensor(augment.CIFAR10_STD)
    torch.testing.assert_close(standardized[0, :, 0, 0], expected)
    encoder = simclr.build_cifar10_simclr(width=8).encoder
    torch.testing.assert_close(encoder[0](floats)[0, :, 0, 0], expected)  # the encoder's _Normalize
    with pytest.raises(ValueError):
        augment.cifar_images_to_tensor(np.zeros((2, 32, 32)))


# --------------------------------------------------------------------------- splits
def _disjoint(*index_sets):
    seen = set()
    for indices in index_sets:
        values = set(np.asarray(indices).tolist())
        assert len(values) == len(indices), "an index appears twice in one split"
        assert not values & seen, "two splits share an example"
        seen |= values


def test_stratified_subset_is_balanced_reproducible_and_typed():
    labels = np.repeat(np.arange(4), 30)
    chosen = data.stratified_subset(labels, per_class=5, seed=0)
    assert np.bincount(labels[chosen]).tolist() == [5, 5, 5, 5]
    np.testing.assert_array_equal(chosen, data.stratified_subset(labels, per_class=5, seed=0))
    assert not np.array_equal(chosen, data.stratified_subset(labels, per_class=5, seed=1))
    as_tensor = data.stratified_subset(torch.from_numpy(labels), per_class=5, seed=0)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.tolist() == chosen.tolist()
    with pytest.raises(ValueError, match="fewer than"):
        data.stratified_subset(labels, per_class=31, seed=0)


def _mnist1d_fixture(monkeypatch):
    generator = np.random.default_rng(0)
    fake = {
        "x": generator.normal(size=(4000, 40)).astype(np.float32),
        "y": np.repeat(np.arange(10), 400).astype(np.int64),
        "x_test": np.zeros((1000, 40), np.float32),
        "y_test": np.zeros(1000, np.int64),
    }
    fake["x"][:, 0] = np.arange(4000)  # the first sample identifies the signal
    monkeypatch.setattr(data, "load_mnist1d", lambda: fake)
    return fake


def test_mnist1d_split_is_disjoint_complete_and_fixed(monkeypatch):
    _mnist1d_fixture(monkeypatch)
    split = data.mnist1d_split()
    train_ids, val_ids = split["x_train"][:, 0].long(), split["x_val"][:, 0].long()
    assert len(train_ids) == 3200 and len(val_ids) == 800
    _disjoint(train_ids.numpy(), val_ids.numpy())
    torch.testing.assert_close(data.mnist1d_split()["x_val"], split["x_val"])
    with pytest.raises(ValueError):
        data.mnist1d_split(validation_size=4000)


def _cifar_fixture(monkeypatch, *, per_class=60):
    labels = np.repeat(np.arange(10), per_class).astype(np.int64)
    images = np.zeros((len(labels), 32, 32, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(len(labels)) % 256  # identify each image by two pixels
    images[:, 0, 1, 0] = np.arange(len(labels)) // 256
    names = [f"class{k}" for k in range(10)]

    def load_cifar10(split, *, classes=None, per_class=None, seed=0, progress=False):
        keep = np.isin(labels, classes) if classes is not None else np.ones(len(labels), bool)
        chosen = np.flatnonzero(keep)
        if per_class is not None:
            chosen = data.stratified_subset(labels, per_class=per_class, seed=seed, classes=classes)
        return data.ImageDataset(
            images=images[chosen],
            labels=labels[chosen],
            class_names=names if classes is None else [names[c] for c in classes],
        )

    monkeypatch.setattr(data, "load_cifar10", load_cifar10)
    return images, labels


def test_cifar5_source_split_is_disjoint_and_stratified(monkeypatch):
    _cifar_fixture(monkeypatch)
    split = data.cifar5_source_split(train_per_class=40, validation_per_class=10)
    assert np.bincount(split["y_train"].numpy()).tolist() == [40] * 5
    assert np.bincount(split["y_val"].numpy()).tolist() == [10] * 5

    def ids(tensor):  # undo the standardization of the two identifying pixels
        mean, std = augment.CIFAR10_MEAN[0], augment.CIFAR10_STD[0]
        pixels = torch.round((tensor[:, 0, 0, :2] * std + mean) * 255).long()
        return (pixels[:, 0] + 256 * pixels[:, 1]).numpy()

    _disjoint(ids(split["x_train"]), ids(split["x_val"]))


def test_cifar10_simclr_split_is_disjoint_and_keeps_every_image(monkeypatch):
    images, labels = _cifar_fixture(monkeypatch)
    split = data.cifar10_simclr_split(validation_size=100)
    assert len(split["x_train"]) == len(images) - 100 and len(split["x_val"]) == 100

    def ids(tensor):
        return (tensor[:, 0, 0, 0].long() + 256 * tensor[:, 0, 1, 0].long()).numpy()

    _disjoint(ids(split["x_train"]), ids(split["x_val"]))
    assert len(set(ids(split["x_train"])) | set(ids(split["x_val"]))) == len(images)
    np.testing.assert_array_equal(labels[ids(split["x_val"])], split["y_val"].numpy())


# --------------------------------------------------------------------------- model builders
def test_model_builders_keep_their_state_dict_contracts():
    source = pretrain.build_cifar5_source()
    assert set(dict(source.named_children())) == {"body", "head"}
    assert source(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    assert source.body(torch.zeros(2, 3, 32, 32)).shape == (2, 128)
    teacher = pretrain.build_mnist1d_teacher()
    assert teacher(torch.zeros(2, 40)).shape == (2, 10)
    assert sum(p.numel() for p in teacher.parameters()) == pytest.approx(66_000, rel=0.05)
    for name in pretrain.RECIPES:  # every recipe's model loads its own fresh state dict
        model = pretrain.build_model(name, profile="fast")
        model.load_state_dict(pretrain.build_model(name, profile="fast").state_dict())


def test_cifar10_simclr_profiles_differ_only_in_width():
    fast = pretrain.build_model("cifar10_simclr", profile="fast")
    full = pretrain.build_model("cifar10_simclr", profile="full")
    assert list(fast.state_dict()) == list(full.state_dict())
    assert fast.encoder(torch.zeros(1, 3, 32, 32)).shape == (1, 32)
    assert full.encoder(torch.zeros(1, 3, 32, 32)).shape == (1, 64)
    classifier = simclr.build_cifar10_classifier(width=32)
    assert classifier(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_rank_within_class_counts_earlier_members_of_the_same_class():
    labels = np.array([2, 0, 2, 1, 0, 2])
    assert data.rank_within_class(labels).tolist() == [0, 0, 1, 0, 1, 2]
