"""SimCLR (labutils.simclr): the NT-Xent loss, encoders, views, pretraining loop and evaluation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from labutils import augment, simclr


def reference_nt_xent(projections_a: torch.Tensor, projections_b: torch.Tensor, *, temperature: float) -> float:
    """NT-Xent written as the SimCLR paper states it, one anchor at a time."""
    rows = torch.cat([projections_a, projections_b]).double()
    count = len(projections_a)
    total = 0.0
    for anchor in range(2 * count):
        positive = (anchor + count) % (2 * count)

        def similarity(other, anchor=anchor):
            return float(rows[anchor] @ rows[other] / (rows[anchor].norm() * rows[other].norm()))

        denominator = sum(math.exp(similarity(other) / temperature) for other in range(2 * count) if other != anchor)
        total += -math.log(math.exp(similarity(positive) / temperature) / denominator)
    return total / (2 * count)


def blobs(count: int, *, dim: int = 8, classes: int = 3, seed: int = 0):
    """Well-separated Gaussian clusters: features (count, dim), labels (count,)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % classes
    centres = 8 * torch.eye(classes, dim)
    return centres[labels] + 0.5 * torch.randn(count, dim, generator=generator), labels


# --------------------------------------------------------------------------- loss
@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_nt_xent_matches_a_plain_loop(temperature):
    generator = torch.Generator().manual_seed(1)
    projections_a = torch.randn(6, 4, generator=generator)
    projections_b = torch.randn(6, 4, generator=generator)
    loss = simclr.nt_xent_loss(projections_a, projections_b, temperature=temperature)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(
        reference_nt_xent(projections_a, projections_b, temperature=temperature), rel=1e-5
    )


def test_nt_xent_ignores_scale_and_rewards_aligned_pairs():
    generator = torch.Generator().manual_seed(2)
    projections = torch.randn(8, 16, generator=generator)
    aligned = simclr.nt_xent_loss(projections, 3 * projections, temperature=0.2)
    unrelated = simclr.nt_xent_loss(projections, torch.randn(8, 16, generator=generator), temperature=0.2)
    assert aligned.item() == pytest.approx(
        simclr.nt_xent_loss(projections, projections, temperature=0.2).item(), rel=1e-5
    )
    assert aligned < unrelated


def test_nt_xent_rejects_bad_input():
    projections = torch.randn(4, 3)
    with pytest.raises(ValueError, match="temperature must be positive"):
        simclr.nt_xent_loss(projections, projections, temperature=0.0)
    with pytest.raises(ValueError, match="need two"):
        simclr.nt_xent_loss(projections, torch.randn(5, 3))
    with pytest.raises(ValueError, match="need two"):
        simclr.nt_xent_loss(torch.randn(4), torch.randn(4))


# --------------------------------------------------------------------------- models
def test_mnist1d_model_shapes():
    model = simclr.build_mnist1d_simclr()
    assert isinstance(model, simclr.SimCLRModel)
    signals = torch.randn(5, 40)
    assert model.encoder(signals).shape == (5, 128)
    assert model(signals).shape == (5, 64)
    assert simclr.build_mnist1d_simclr(width=8, feature_dim=16).encoder(signals).shape == (5, 16)


def test_cifar10_model_shapes_and_state_dict_keys():
    model = simclr.build_cifar10_simclr()
    images = torch.rand(2, 3, 32, 32)
    assert model.encoder(images).shape == (2, 64)
    assert model(images).shape == (2, 64)
    keys = list(model.state_dict())
    # checkpoints are state_dicts: these names must not change
    assert keys[:3] == ["encoder.0.mean", "encoder.0.std", "encoder.1.weight"]
    assert keys[-4:] == [
        "projection_head.0.weight",
        "projection_head.0.bias",
        "projection_head.2.weight",
        "projection_head.2.bias",
    ]


# --------------------------------------------------------------------------- views
def test_mnist1d_views_shape_and_determinism():
    signals = torch.randn(10, 40, generator=torch.Generator().manual_seed(0))
    first = simclr.mnist1d_simclr_views(signals, generator=torch.Generator().manual_seed(3))
    again = simclr.mnist1d_simclr_views(signals, generator=torch.Generator().manual_seed(3))
    other = simclr.mnist1d_simclr_views(signals, generator=torch.Generator().manual_seed(4))
    assert first.shape == (10, 40) and first.dtype == torch.float32
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first, other)
    assert not torch.allclose(first, signals)


def test_mnist1d_views_with_every_strength_off_are_the_signals():
    signals = torch.randn(4, 40)
    views = simclr.mnist1d_simclr_views(signals, max_shift=0, min_scale=1.0, shear=0.0, amplitude=0.0, noise=0.0)
    torch.testing.assert_close(views, signals)


def test_random_resized_crop_1d():
    signals = torch.randn(6, 40)
    torch.testing.assert_close(augment.random_resized_crop_1d(signals, min_scale=1.0), signals)
    crops = augment.random_resized_crop_1d(signals, min_scale=0.5, generator=torch.Generator().manual_seed(0))
    assert crops.shape == (6, 40)
    # linear interpolation stays within each signal's range
    assert (crops.min(dim=1).values >= signals.min(dim=1).values - 1e-6).all()
    assert (crops.max(dim=1).values <= signals.max(dim=1).values + 1e-6).all()
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="min_scale"):
            augment.random_resized_crop_1d(signals, min_scale=bad)


def test_images_to_float():
    images = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    floats = augment.images_to_float(images)
    assert floats.shape == (3, 3, 32, 32) and floats.dtype == torch.float32
    assert floats[1, 2, 5, 7] == images[1, 5, 7, 2] / 255


def test_cifar10_views_shape_range_and_determinism():
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    first = simclr.cifar10_simclr_views(images, generator=torch.Generator().manual_seed(5))
    again = simclr.cifar10_simclr_views(images, generator=torch.Generator().manual_seed(5))
    other = simclr.cifar10_simclr_views(images, generator=torch.Generator().manual_seed(6))
    assert first.shape == images.shape
    assert first.min() >= 0 and first.max() <= 1
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first, other)
    gray = simclr.cifar10_simclr_views(images, grayscale_probability=1.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(gray[:, 0], gray[:, 1])
    torch.testing.assert_close(gray[:, 1], gray[:, 2])


# --------------------------------------------------------------------------- pretraining
def tiny_pretraining(*, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    model = simclr.build_mnist1d_simclr(width=8, feature_dim=16)
    signals = torch.randn(64, 40, generator=torch.Generator().manual_seed(1))
    settings = dict(
        views=simclr.mnist1d_simclr_views,
        epochs=2,
        batch_size=16,
        learning_rate=1e-2,
        temperature=0.5,
        seed=seed,
        device="cpu",
    )
    settings.update(overrides)
    return model, simclr.pretrain_simclr(model, signals, **settings)


def test_pretrain_simclr_runs_and_is_deterministic():
    model, losses = tiny_pretraining()
    again, losses_again = tiny_pretraining()
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert losses == losses_again
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, again.state_dict()[key], rtol=0, atol=0)
    assert not model.training


def test_pretrain_simclr_stops_after_max_steps():
    _, losses = tiny_pretraining(epochs=5, max_steps=3)  # 4 steps per epoch
    assert len(losses) == 1


# --------------------------------------------------------------------------- evaluation
def test_encode_shapes_batches_and_mode():
    torch.manual_seed(0)
    model = simclr.build_mnist1d_simclr(width=8, feature_dim=16)
    model.train()
    signals = torch.randn(10, 40)
    features = simclr.encode(model, signals)
    assert features.shape == (10, 16) and features.dtype == torch.float32
    torch.testing.assert_close(simclr.encode(model, signals, batch_size=3), features)
    assert simclr.encode(model, signals, projections=True).shape == (10, 64)
    assert model.training  # restored
    doubled = simclr.encode(model, signals, prepare=lambda batch: 2 * batch)
    torch.testing.assert_close(doubled, simclr.encode(model, 2 * signals))


def test_linear_probe_separates_blobs_and_is_seeded():
    train_features, train_labels = blobs(60)
    eval_features, eval_labels = blobs(30, seed=1)
    accuracy = simclr.linear_probe_accuracy(train_features, train_labels, eval_features, eval_labels, steps=100, seed=0)
    assert accuracy >= 0.95
    noise, noise_labels = torch.randn(40, 8), torch.arange(40) % 2
    first = simclr.linear_probe_accuracy(noise, noise_labels, noise, noise_labels, steps=5, seed=3)
    again = simclr.linear_probe_accuracy(noise, noise_labels, noise, noise_labels, steps=5, seed=3)
    assert first == again


def test_linear_probe_ignores_a_feature_that_is_dead_on_the_training_set():
    train_features, train_labels = blobs(60)
    eval_features, eval_labels = blobs(30, seed=1)
    # a ReLU unit that never fires on the training images but does on evaluation images: divided by
    # a tiny spread it would swamp the informative features; with scale 1 it stays harmless
    dead = torch.zeros(len(train_features), 1)
    noisy = 5 * torch.randn(len(eval_features), 1, generator=torch.Generator().manual_seed(2)).abs()
    with_dead = simclr.linear_probe_accuracy(
        torch.cat([train_features, dead], dim=1),
        train_labels,
        torch.cat([eval_features, noisy], dim=1),
        eval_labels,
        steps=100,
        seed=0,
    )
    assert with_dead == simclr.linear_probe_accuracy(
        train_features, train_labels, eval_features, eval_labels, steps=100, seed=0
    )


def test_knn_accuracy_on_blobs_and_by_hand():
    train_features, train_labels = blobs(60)
    eval_features, eval_labels = blobs(30, seed=1)
    assert simclr.knn_accuracy(train_features, train_labels, eval_features, eval_labels) == 1.0
    # cosine similarity: (1, 0.1) is nearest to (1, 0) (class 0), (0.1, 1) to (0, 2) (class 1)
    train = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 2])
    queries = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    assert simclr.knn_accuracy(train, labels, queries, torch.tensor([0, 1]), neighbours=1) == 1.0
    assert simclr.knn_accuracy(train, labels, queries, torch.tensor([1, 0]), neighbours=1) == 0.0
    for bad in (0, 4):
        with pytest.raises(ValueError, match="neighbours must be in"):
            simclr.knn_accuracy(train, labels, queries, torch.tensor([0, 1]), neighbours=bad)


def test_few_label_metrics_names_and_values():
    train_features, train_labels = blobs(60, dim=3)
    eval_features, eval_labels = blobs(30, dim=3, seed=1)
    metrics = simclr.few_label_metrics(
        train_features, train_labels, eval_features, eval_labels, per_class_values=(2, 5), seed=0
    )
    assert set(metrics) == {"val_linear_probe_2", "val_knn_2", "val_linear_probe_5", "val_knn_5"}
    assert all(0 <= value <= 1 for value in metrics.values())
    assert metrics["val_linear_probe_5"] >= 0.95 and metrics["val_knn_5"] >= 0.95


def test_supervised_few_labels_trains_and_keeps_the_best_state():
    train_inputs, train_labels = blobs(30)
    val_inputs, val_labels = blobs(30, seed=1)
    torch.manual_seed(0)
    model = nn.Linear(8, 3)

    def views(inputs, *, generator):
        return inputs + 0.1 * torch.randn(inputs.shape, generator=generator)

    accuracy = simclr.supervised_few_labels(
        model,
        train_inputs,
        train_labels,
        val_inputs,
        val_labels,
        views=views,
        steps=40,
        learning_rate=0.1,
        evaluate_every=10,
    )
    assert accuracy >= 0.95
    assert not model.training
    with torch.no_grad():
        assert (model(val_inputs).argmax(dim=1) == val_labels).float().mean() == accuracy
    with pytest.raises(ValueError, match="must be positive"):
        simclr.supervised_few_labels(model, train_inputs, train_labels, val_inputs, val_labels, views=views, steps=0)


def test_pretraining_resumes_to_the_same_result(tmp_path):
    signals = torch.randn(64, 40, generator=torch.Generator().manual_seed(0))
    settings = dict(
        views=simclr.mnist1d_simclr_views,
        epochs=3,
        batch_size=16,
        learning_rate=1e-2,
        temperature=0.5,
        seed=1,
        device="cpu",
    )

    def fresh():
        torch.manual_seed(0)
        return simclr.build_mnist1d_simclr(width=8, feature_dim=16)

    straight = fresh()
    straight_losses = simclr.pretrain_simclr(straight, signals, **settings)
    state = tmp_path / "resume.pt"
    interrupted = fresh()  # a run stopped after two epochs ...
    simclr.pretrain_simclr(interrupted, signals, **dict(settings, epochs=2), resume_path=state)
    assert not state.exists(), "a finished run removes its resume file"
    # ... is simulated by saving the state of a two-epoch run under the three-epoch settings
    partial = fresh()
    partial_state = tmp_path / "partial.pt"
    original_save = torch.save

    def stop_after_two(obj, path, *args, **kwargs):
        original_save(obj, path, *args, **kwargs)
        if isinstance(obj, dict) and len(obj.get("losses", [])) == 2:
            raise KeyboardInterrupt

    torch.save = stop_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            simclr.pretrain_simclr(partial, signals, **settings, resume_path=partial_state)
    finally:
        torch.save = original_save
    assert partial_state.exists() and not list(tmp_path.glob("*.part")), "no half-written file"
    resumed = fresh()
    resumed_losses = simclr.pretrain_simclr(resumed, signals, **settings, resume_path=partial_state)
    assert resumed_losses == pytest.approx(straight_losses)
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value)
    with pytest.raises(ValueError, match="other settings"):
        original_save({"settings": {}, "losses": []}, partial_state)
        simclr.pretrain_simclr(fresh(), signals, **settings, resume_path=partial_state)
