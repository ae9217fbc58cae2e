"""The PyTorch training loop, its callbacks and state saving."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from labutils import train
from labutils.train import Callback, EarlyStopping, LearningRateScheduler


def blobs(count: int = 200, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (count,), generator=generator)
    inputs = torch.randn(count, 2, generator=generator) + 2.5 * labels[:, None].float()
    return inputs, labels


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))


def test_fit_returns_keras_like_history_and_learns():
    model = small_model()
    history = train.fit(
        model,
        blobs(),
        blobs(seed=1),
        epochs=5,
        batch_size=32,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
        device="cpu",
        seed=0,
        progress=False,
    )
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert all(len(values) == 5 for values in history.values())
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.85
    assert not model.training  # left in eval mode


def test_fit_is_reproducible_with_a_seed():
    results = []
    for _ in range(2):
        model = small_model(seed=3)
        torch.manual_seed(0)  # dropout masks
        history = train.fit(
            model,
            blobs(),
            epochs=3,
            batch_size=16,
            device="cpu",
            seed=7,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            progress=False,
        )
        results.append(history["loss"])
    assert results[0] == results[1]


def test_fit_accepts_numpy_and_dataloader_and_transform():
    inputs, labels = blobs()
    seen = []

    def transform(batch):
        seen.append(batch.shape[0])
        return batch

    model = small_model()
    train.fit(
        model,
        (inputs.numpy(), labels.numpy()),
        epochs=1,
        batch_size=50,
        device="cpu",
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        transform=transform,
        progress=False,
    )
    assert seen == [50, 50, 50, 50]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, labels), batch_size=64)
    history = train.fit(
        model,
        loader,
        loader,
        epochs=1,
        device="cpu",
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        progress=False,
    )
    assert "val_loss" in history


def test_fit_rejects_bad_arguments():
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(model, blobs(), epochs=0, optimizer=optimizer, progress=False)
    with pytest.raises(ValueError, match="differ in length"):
        inputs, labels = blobs()
        train.fit(model, (inputs, labels[:-1]), epochs=1, optimizer=optimizer, device="cpu", progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        train.fit(model, blobs(), epochs=1, optimizer=optimizer, metrics=["f1"], progress=False)


def test_fit_stops_on_non_finite_loss():
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train.fit(
            model,
            blobs(),
            epochs=20,
            optimizer=optimizer,
            device="cpu",
            progress=False,
            loss_fn=lambda outputs, targets: outputs.pow(2).sum() * 1e30,
        )


class _ReplayModel(nn.Module):
    """A model whose only parameter records the epoch, to check restored weights."""

    def __init__(self):
        super().__init__()
        self.epoch = nn.Parameter(torch.zeros(()), requires_grad=False)


def _replay(callback: EarlyStopping, values, key="val_loss"):
    """Drive a callback through a recorded history, as fit() would."""
    model = _ReplayModel()
    trainer = train._Trainer(model, optimizer=None, history={})
    callback.trainer = trainer
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.epoch.data.fill_(epoch)
        callback.on_epoch_end(epoch, {key: value})
        if trainer.stop_training:
            break
    callback.on_train_end()
    return model


def test_early_stopping_matches_a_hand_computed_history():
    # best 0.5 at epoch 2; epochs 3, 4, 5 do not improve by more than min_delta=0.01
    values = [1.0, 0.7, 0.5, 0.495, 0.52, 0.51, 0.3]
    callback = EarlyStopping(patience=3, min_delta=0.01)
    model = _replay(callback, values)
    assert callback.best_epoch == 2 and callback.best == 0.5
    assert callback.stopped_epoch == 5
    assert model.epoch.item() == 2  # best weights restored


def test_early_stopping_max_mode_and_no_restore():
    values = [0.5, 0.6, 0.6, 0.59, 0.7]
    callback = EarlyStopping(monitor="val_accuracy", patience=2, restore_best_weights=False)
    model = _replay(callback, values, key="val_accuracy")
    assert callback.mode == "max" and callback.best_epoch == 1 and callback.stopped_epoch == 3
    assert model.epoch.item() == 3  # weights of the last epoch kept


def test_early_stopping_matches_keras_on_the_same_history():
    keras = pytest.importorskip("keras")
    values = [0.9, 0.8, 0.81, 0.79, 0.795, 0.80, 0.78, 0.9, 0.95, 0.99]
    for patience in (1, 2, 3):
        for min_delta in (0.0, 0.005, 0.02):
            ours = EarlyStopping(patience=patience, min_delta=min_delta)
            _replay(ours, values)
            theirs = keras.callbacks.EarlyStopping(patience=patience, min_delta=min_delta)
            keras_model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
            keras_model.stop_training = False  # Model.fit sets this before training
            theirs.set_model(keras_model)
            theirs.on_train_begin()
            for epoch, value in enumerate(values):
                theirs.on_epoch_end(epoch, {"val_loss": value})
                if theirs.model.stop_training:
                    break
            keras_stop = theirs.stopped_epoch if theirs.model.stop_training else None
            assert ours.stopped_epoch == keras_stop, (patience, min_delta)


def test_early_stopping_within_fit_restores_best_weights():
    model = small_model()
    stopper = EarlyStopping(patience=1)
    history = train.fit(
        model,
        blobs(),
        blobs(seed=1),
        epochs=30,
        device="cpu",
        progress=False,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        callbacks=[stopper],
    )
    best = int(np.argmin(history["val_loss"]))
    assert stopper.best_epoch == best
    restored = train.evaluate(model, blobs(seed=1), device="cpu")["loss"]
    assert restored == pytest.approx(history["val_loss"][best], rel=1e-5)


def test_early_stopping_rejects_bad_arguments_and_missing_metric():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="down")
    model = small_model()
    with pytest.raises(ValueError, match="not logged"):
        train.fit(
            model,
            blobs(),
            epochs=2,
            device="cpu",
            progress=False,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            callbacks=[EarlyStopping()],
        )


def test_learning_rate_scheduler_steps_per_epoch():
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = LearningRateScheduler(lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    history = train.fit(
        model, blobs(), epochs=3, optimizer=optimizer, callbacks=[scheduler], device="cpu", progress=False
    )
    assert history["lr"] == [1.0, 0.5, 0.25]
    plateau = LearningRateScheduler(lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=0))
    # the optimizer holds a parameter the model does not use: the validation loss cannot improve
    unused = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([unused], lr=1.0)
    history = train.fit(
        model, blobs(), blobs(seed=1), epochs=3, optimizer=optimizer, callbacks=[plateau], device="cpu", progress=False
    )
    assert len(set(history["val_loss"])) == 1, "the setup should leave the validation loss unchanged"
    assert history["lr"] == pytest.approx([1.0, 1.0, 0.1]), "no improvement after epoch 1: the rate drops tenfold"


def test_callback_can_stop_training():
    class StopAfterTwo(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                self.trainer.stop_training = True

    model = small_model()
    history = train.fit(
        model,
        blobs(),
        epochs=10,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        callbacks=[StopAfterTwo()],
        device="cpu",
        progress=False,
    )
    assert len(history["loss"]) == 2


def test_evaluate_and_predict_use_eval_mode_and_restore_it():
    model = small_model()
    model.train()
    inputs, labels = blobs()
    scores = train.evaluate(model, (inputs, labels), device="cpu")
    assert set(scores) == {"loss", "accuracy"} and model.training
    first = train.predict(model, inputs, device="cpu")
    second = train.predict(model, inputs, device="cpu")
    torch.testing.assert_close(first, second)  # dropout off in eval mode
    assert first.shape == (200, 2) and model.training
    with pytest.raises(ValueError, match="no data"):
        train.evaluate(model, [], device="cpu")


def test_save_and_load_state_roundtrip(tmp_path):
    model = small_model(seed=1)
    train.save_state(model, tmp_path / "model.pt")
    other = train.load_state(small_model(seed=2), tmp_path / "model.pt")
    for a, b in zip(model.parameters(), other.parameters()):
        torch.testing.assert_close(a, b)
    assert train.count_parameters(model) == 2 * 16 + 16 + 16 * 2 + 2
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


@pytest.mark.parametrize(
    "monitor, expected",
    [
        ("val_loss", "min"),
        ("loss", "min"),
        ("val_mae", "min"),
        ("mse", "min"),
        ("val_accuracy", "max"),
        ("auc", "max"),
        ("val_f1", "max"),
    ],
)
def test_early_stopping_auto_mode_knows_common_metrics(monitor, expected):
    assert train.EarlyStopping(monitor=monitor).mode == expected


def test_early_stopping_auto_mode_refuses_to_guess():
    with pytest.raises(ValueError, match="pass mode='min'"):
        train.EarlyStopping(monitor="val_margin")
    assert train.EarlyStopping(monitor="val_margin", mode="max").mode == "max"
