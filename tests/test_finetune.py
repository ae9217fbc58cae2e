"""labutils.finetune.train_with_early_stopping: per-part learning rates, best weights, patience."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labutils.finetune import train_with_early_stopping


class TwoPart(nn.Module):
    """A tiny body + head network for (n, 3, 8, 8) images and two classes."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU())
        self.head = nn.Linear(16, 2)

    def forward(self, images):
        return self.head(self.body(images))


def toy_data(count=64, *, seed=0):
    """Images whose class is the sign of their mean brightness: (count, 3, 8, 8) and (count,)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 2
    images = torch.randn(count, 3, 8, 8, generator=generator) * 0.5 + (2.0 * labels - 1.0).view(-1, 1, 1, 1)
    return images, labels


def make_network(seed=0):
    torch.manual_seed(seed)
    return TwoPart()


def parameters_of(module):
    return [parameter.detach().clone() for parameter in module.parameters()]


def unchanged(before, module):
    return all(torch.equal(old, new) for old, new in zip(before, module.parameters(), strict=True))


BUDGET = dict(max_steps=40, evaluate_every=5, seed=0, patience=100)


def test_the_body_trains_at_its_own_learning_rate():
    images, labels = toy_data()
    network = make_network()
    body, head = parameters_of(network.body), parameters_of(network.head)
    train_with_early_stopping(
        network,
        images,
        labels,
        validation=toy_data(seed=1),
        body_learning_rate=0.0,
        head_learning_rate=1e-2,
        weight_decay=0.0,
        **BUDGET,
    )
    assert unchanged(body, network.body), "a body learning rate of 0 must leave the body as it was"
    assert not unchanged(head, network.head), "the head should have trained"

    network = make_network()
    body, head = parameters_of(network.body), parameters_of(network.head)
    train_with_early_stopping(
        network,
        images,
        labels,
        validation=toy_data(seed=1),
        body_learning_rate=1e-2,
        head_learning_rate=0.0,
        weight_decay=0.0,
        **BUDGET,
    )
    assert unchanged(head, network.head), "a head learning rate of 0 must leave the head as it was"
    assert not unchanged(body, network.body), "the body should have trained"


def test_a_smaller_body_rate_moves_the_body_less():
    images, labels = toy_data()
    moves = {}
    for rate in (1e-3, 1e-2):
        network = make_network()
        body = parameters_of(network.body)
        train_with_early_stopping(
            network,
            images,
            labels,
            validation=toy_data(seed=1),
            body_learning_rate=rate,
            head_learning_rate=1e-2,
            weight_decay=0.0,
            **BUDGET,
        )
        moves[rate] = sum((new - old).norm().item() for old, new in zip(body, network.body.parameters(), strict=True))
    assert moves[1e-3] < 0.5 * moves[1e-2]


class Recording(TwoPart):
    """TwoPart that keeps a copy of its weights at every evaluation-mode call (each validation check)."""

    def __init__(self):
        super().__init__()
        self.snapshots = []

    def forward(self, images):
        if not self.training:
            self.snapshots.append({key: value.clone() for key, value in self.state_dict().items()})
        return super().forward(images)


def test_it_keeps_the_best_validation_weights_not_the_first_or_last():
    images, labels = toy_data()
    # validation labels are the opposite of the rule the training images teach: the better the
    # network learns, the worse it does on them, so the best evaluation comes early
    validation = (images[:32].clone(), 1 - labels[:32])
    torch.manual_seed(0)
    network = Recording()
    initial = {key: value.clone() for key, value in network.state_dict().items()}
    log = train_with_early_stopping(
        network,
        images,
        labels,
        validation=validation,
        body_learning_rate=1e-3,
        head_learning_rate=1e-3,
        max_steps=30,
        evaluate_every=1,
        seed=0,
        patience=100,
    )
    evaluations = network.snapshots[:-1]  # the last call scores the training images after training
    assert len(evaluations) == len(log["curve"]) == 30
    assert log["curve"][-1] < max(log["curve"]), "the test needs a curve that falls"
    best = log["curve"].index(max(log["curve"]))
    assert log["best_step"] == best + 1
    kept = network.state_dict()
    assert all(torch.equal(kept[key], evaluations[best][key]) for key in kept), "not the best evaluation's weights"
    assert not all(torch.equal(kept[key], initial[key]) for key in kept), "the initial weights were kept"
    accuracy = (network(validation[0]).argmax(dim=1) == validation[1]).float().mean().item()
    assert accuracy == pytest.approx(log["val_accuracy"])
    assert not network.training


def test_patience_stops_after_that_many_evaluations_without_improvement():
    images, labels = toy_data()
    validation = (images[:32].clone(), 1 - labels[:32])
    for patience in (2, 4):
        network = make_network()
        log = train_with_early_stopping(
            network,
            images,
            labels,
            validation=validation,
            body_learning_rate=1e-2,
            head_learning_rate=1e-2,
            max_steps=200,
            evaluate_every=5,
            seed=0,
            patience=patience,
        )
        assert log["steps"] < 200
        assert log["steps"] == log["best_step"] + patience * 5
        assert len(log["curve"]) == log["steps"] // 5


def test_it_learns_and_reports_training_accuracy():
    images, labels = toy_data()
    network = make_network()
    log = train_with_early_stopping(
        network, images, labels, validation=toy_data(seed=1), body_learning_rate=1e-2, head_learning_rate=1e-2, **BUDGET
    )
    assert log["val_accuracy"] > 0.9 and log["train_accuracy"] > 0.9
    assert log["steps"] == 40 and len(log["curve"]) == 8


def test_same_seed_same_result():
    images, labels = toy_data()
    states = []
    for _ in range(2):
        network = make_network()
        train_with_early_stopping(
            network,
            images,
            labels,
            validation=toy_data(seed=1),
            body_learning_rate=1e-2,
            head_learning_rate=1e-2,
            **BUDGET,
        )
        states.append(network.state_dict())
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


@pytest.mark.parametrize(
    "change",
    [
        dict(max_steps=0),
        dict(evaluate_every=0),
        dict(patience=0),
        dict(body_learning_rate=-1.0),
        dict(head_learning_rate=float("nan")),
        dict(batch_size=0),
        dict(labels=torch.zeros(3, dtype=torch.long)),
        dict(validation=(torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long))),
    ],
)
def test_bad_input_raises_value_error(change):
    images, labels = toy_data()
    arguments = dict(validation=toy_data(seed=1), body_learning_rate=1e-2, head_learning_rate=1e-2, **BUDGET)
    arguments.update(labels=labels)
    arguments.update(change)
    with pytest.raises(ValueError):
        train_with_early_stopping(make_network(), images, **arguments)


def test_a_network_without_body_and_head_is_refused():
    images, labels = toy_data()
    with pytest.raises(ValueError, match="body"):
        train_with_early_stopping(
            nn.Sequential(nn.Flatten(), nn.Linear(192, 2)),
            images,
            labels,
            validation=toy_data(seed=1),
            body_learning_rate=1e-2,
            head_learning_rate=1e-2,
            **BUDGET,
        )
