"""The capstone's grid: every technique of the course on one small-data task, paired over draws.

Usage (from the repository root)::

    python -m labutils.playbook [--sizes 10 50 250] [--draws 5] [--smoke] [--results-dir DIR]

The task is CIFAR-10 classes 5-9 (dog, frog, horse, ship, truck) with 10, 50 or 250
labelled training images per class (:func:`playbook_split`). Nothing here touches the
source data of the transfer network (classes 0-4) or, before the last step of a record,
the target's test images. The SimCLR encoder was pretrained without labels on 45,000
CIFAR-10 training images, which include this task's training pool but no test image.

For each size the grid runs in two stages:

1. **Tuning**, on a labelled draw of its own (never one of the evaluation draws): the
   baseline's learning rate, the transfer fine-tuning learning rate, the weight-decay
   strength and the dropout rate are each chosen from a small grid by validation accuracy.
2. **Evaluation**, for ``draws`` labelled draws (``stratified_subset`` with seed
   ``DRAW_SEED + draw``, the same images for every arm): every arm of :data:`ARMS` is
   trained, early-stopped on the validation images (each arm gets the number of steps that
   validation chooses for it), then evaluated once on the 5,000 test images.

Results go to ``experiments/results/small_data_playbook/size_NNN.json`` (one file per size,
so sizes can run in separate processes), rewritten atomically after every record; a record
already there is not computed again, so an interrupted run resumes where it stopped.
Notebook 17 reads these files, draws the chart, and re-runs one record live
(:func:`run_record`).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import shlex
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .augment import cifar_images_to_tensor, images_to_float, random_flip_and_crop
from .checkpoints import load_checkpoint, manifest
from .config import set_torch_threads
from .data import SPLIT_SEED, load_cifar10, rank_within_class, stratified_subset
from .files import atomic_write
from .pretrain import build_cifar5_source, build_model
from .simclr import encode, linear_probe_accuracy

__all__ = [
    "ARMS",
    "CLASSES",
    "SIZES",
    "playbook_split",
    "draw_indices",
    "train_network",
    "run_record",
    "load_results",
    "main",
]

CLASSES = (5, 6, 7, 8, 9)  # dog, frog, horse, ship, truck: disjoint from the transfer source's
SIZES = (10, 50, 250)  # labelled images per class
DRAWS = 5
VALIDATION_PER_CLASS = 50
UNLABELLED_PER_CLASS = 1000  # the distillation student's unlabelled transfer set
DRAW_SEED = 3000
TUNING_DRAW = 100  # the tuning stage's own labelled draw
RESULTS_DIR = Path(__file__).resolve().parent.parent / "experiments" / "results" / "small_data_playbook"

#: steps of training per size (constant learning rate, validation every tenth of them); augmented
#: batches differ at every step, so the arms with augmentation or mixup get a longer budget
SCHEDULE = {
    10: dict(steps=300, augmented_steps=900, batch_size=50),
    50: dict(steps=500, augmented_steps=1500, batch_size=64),
    250: dict(steps=1000, augmented_steps=2000, batch_size=64),
}
SMOKE_SCHEDULE = dict(steps=4, augmented_steps=6, batch_size=16)
#: the tuning stage's grids
TUNING_GRID = {
    "learning_rate": (5e-4, 2e-3, 5e-3),
    "transfer_learning_rate": (2e-4, 1e-3),
    "weight_decay": (0.05, 0.5, 5.0),
    "dropout_rate": (0.3, 0.6),
}
PROBE_WEIGHT_DECAYS = (1e-4, 1e-2, 1e-1)
MIXUP_ALPHA = 0.4
ENSEMBLE_MEMBERS = 3

#: every arm of the evaluation stage: what it changes relative to the baseline
ARMS = OrderedDict(
    baseline="the small CNN from scratch, AdamW, learning rate and steps chosen on validation",
    full_budget="the baseline trained for its whole step budget (no early stopping)",
    weight_decay="baseline + decoupled weight decay (strength chosen on validation)",
    dropout="baseline + dropout before the classifier (rate chosen on validation)",
    augment="baseline + random flips and 4-pixel shifts",
    mixup="baseline + mixup (alpha 0.4)",
    transfer_frozen="frozen features of the cifar5_source network + a linear classifier",
    transfer_finetuned="the cifar5_source network fine-tuned (learning rate chosen on validation)",
    simclr_probe="frozen SimCLR features (cifar10_simclr) + a linear classifier",
    distillation="the small CNN trained on the fine-tuned network's soft labels of 5,000 unlabelled images",
    ensemble="3 baselines from different initializations, probabilities averaged",
    finetuned_augment="transfer fine-tuned + flips and shifts",
    regularizers="augmentation + weight decay + dropout",
)


# --------------------------------------------------------------------------- data
def playbook_split(*, smoke: bool = False) -> dict:
    """The capstone's data: a labelled pool, validation, unlabelled and test images.

    The 25,000 CIFAR-10 training images of classes 5-9 are shuffled with ``SPLIT_SEED``;
    per class the first 50 validate, the next 1,000 form the unlabelled transfer set, and the
    rest (3,950 per class) are the pool that labelled draws come from.

    Returns
    -------
    dict
        ``pool_images`` uint8 (n, 32, 32, 3) and ``pool_labels`` int64 (n,) in 0..4, and
        likewise ``val_``, ``unlabelled_`` and ``test_`` (the 5,000 test images of classes 5-9;
        500 in ``smoke``), ``class_names``.
    """
    train = load_cifar10("train", classes=CLASSES, progress=False)
    test = load_cifar10("test", classes=CLASSES, progress=False)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(train.labels))
    rank = rank_within_class(train.labels[order])
    parts = {
        "val": order[rank < VALIDATION_PER_CLASS],
        "unlabelled": order[(rank >= VALIDATION_PER_CLASS) & (rank < VALIDATION_PER_CLASS + UNLABELLED_PER_CLASS)],
        "pool": order[rank >= VALIDATION_PER_CLASS + UNLABELLED_PER_CLASS],
    }
    split = {"class_names": train.class_names}
    for name, indices in parts.items():
        indices = np.sort(indices)
        split[f"{name}_images"], split[f"{name}_labels"] = train.images[indices], train.labels[indices]
    test_keep = stratified_subset(test.labels, per_class=100, seed=SPLIT_SEED) if smoke else slice(None)
    split["test_images"], split["test_labels"] = test.images[test_keep], test.labels[test_keep]
    return split


def draw_indices(pool_labels: np.ndarray, *, per_class: int, draw: int) -> np.ndarray:
    """Indices into the pool of one labelled draw (the same images for every arm)."""
    return stratified_subset(pool_labels, per_class=per_class, seed=DRAW_SEED + draw)


# --------------------------------------------------------------------------- networks and training
def build_network(*, dropout_rate: float = 0.0, pretrained: bool = False) -> nn.Module:
    """The small CNN of every trained arm: :func:`labutils.pretrain.build_cifar5_source` (width 16).

    ``model.body`` maps standardized images (batch, 3, 32, 32) to 128 features, ``model.head``
    to 5 logits; with ``dropout_rate`` a dropout layer sits between them; with ``pretrained``
    the body starts from the committed ``cifar5_source`` checkpoint (its head is replaced).
    """
    model = build_cifar5_source(width=16, num_classes=len(CLASSES))
    if pretrained:
        source = load_checkpoint(build_model("cifar5_source"), "cifar5_source")
        model.body.load_state_dict(source.body.state_dict())
    if dropout_rate > 0:
        model = nn.Sequential(OrderedDict(body=model.body, dropout=nn.Dropout(dropout_rate), head=model.head))
    return model.to(memory_format=torch.channels_last)


@torch.no_grad()
def predict_probabilities(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Softmax outputs (n, classes) of ``model`` in eval mode."""
    model.eval()
    return torch.cat(
        [model(inputs[start : start + batch_size]).softmax(dim=1) for start in range(0, len(inputs), batch_size)]
    )


def _accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    return float((probabilities.argmax(dim=1) == labels).float().mean())


def train_network(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    val_inputs: torch.Tensor,
    val_labels: torch.Tensor,
    steps: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float = 0.0,
    augment: bool = False,
    mixup_alpha: float = 0.0,
    unlabelled: tuple[torch.Tensor, torch.Tensor] | None = None,
    seed: int,
) -> dict:
    """Train ``model`` with AdamW at a constant learning rate; keep the best validation state.

    A step-based loop rather than :func:`labutils.train.fit`: the arms need mixup and a
    distillation term on unlabelled images, and the validation accuracy every
    ``steps // 10`` steps to early-stop.

    Parameters
    ----------
    model : nn.Module
        (batch, 3, 32, 32) standardized images -> (batch, classes) logits; trained in place.
    inputs : Tensor, shape (n, 3, 32, 32); labels : Tensor of int64, shape (n,)
    val_inputs, val_labels : Tensor
        The validation images that choose the step (early stopping).
    steps, batch_size : int
        Each step draws ``min(batch_size, n)`` labelled images at random.
    learning_rate, weight_decay : float
        AdamW's (decoupled weight decay).
    augment : bool
        Random flips and 4-pixel shifts of every batch.
    mixup_alpha : float
        Mix each batch with a permutation of itself, weight drawn from Beta(alpha, alpha).
    unlabelled : (Tensor (m, 3, 32, 32), Tensor (m, classes)), optional
        Images and a teacher's probabilities: each step adds the cross-entropy to the
        teacher's probabilities on ``batch_size`` of them (knowledge distillation at T = 1).
    seed : int
        Seeds the batches, the augmentation and mixup.

    Returns
    -------
    dict
        ``best_state`` (the state dict at the best validation accuracy), ``best_step``,
        ``best_val_accuracy``, ``final_val_accuracy``, ``curve`` (list of (step, val
        accuracy)), ``train_accuracy`` (of the best state, on unaugmented training images).
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    mixup_weights = np.random.default_rng(seed).beta(mixup_alpha, mixup_alpha, size=steps) if mixup_alpha > 0 else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    evaluate_every = max(steps // 10, 1)
    best = dict(best_val_accuracy=-1.0, best_step=0, best_state=None)
    curve = []
    for step in range(1, steps + 1):
        model.train()
        chosen = torch.randperm(len(inputs), generator=generator)[:batch_size]
        batch, targets = inputs[chosen], nn.functional.one_hot(labels[chosen], len(CLASSES)).float()
        if augment:
            batch = random_flip_and_crop(batch, padding=4, generator=generator)
        if mixup_alpha > 0:
            weight = float(mixup_weights[step - 1])
            partner = torch.randperm(len(batch), generator=generator)
            batch = weight * batch + (1 - weight) * batch[partner]
            targets = weight * targets + (1 - weight) * targets[partner]
        if unlabelled is not None:
            extra = torch.randint(len(unlabelled[0]), (batch_size,), generator=generator)
            extra_batch = unlabelled[0][extra]
            if augment:
                extra_batch = random_flip_and_crop(extra_batch, padding=4, generator=generator)
            batch, targets = torch.cat([batch, extra_batch]), torch.cat([targets, unlabelled[1][extra]])
        loss = nn.functional.cross_entropy(model(batch.contiguous(memory_format=torch.channels_last)), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % evaluate_every == 0 or step == steps:
            accuracy = _accuracy(predict_probabilities(model, val_inputs), val_labels)
            curve.append((step, accuracy))
            if accuracy > best["best_val_accuracy"]:
                best = dict(best_val_accuracy=accuracy, best_step=step, best_state=copy.deepcopy(model.state_dict()))
    final_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best["best_state"])
    return {
        **best,
        "final_state": final_state,
        "final_val_accuracy": curve[-1][1],
        "curve": curve,
        "train_accuracy": _accuracy(predict_probabilities(model, inputs), labels),
    }


# --------------------------------------------------------------------------- the grid
#: arms computed together (one training run serves several): group -> the arms it records
GROUPS = OrderedDict(
    baseline=("baseline", "full_budget", "ensemble"),
    weight_decay=("weight_decay",),
    dropout=("dropout",),
    augment=("augment",),
    mixup=("mixup",),
    transfer=("transfer_finetuned", "distillation"),
    probes=("transfer_frozen", "simclr_probe"),
    finetuned_augment=("finetuned_augment",),
    regularizers=("regularizers",),
)


class Context:
    """The split as tensors, the frozen feature extractors, and one size's schedule.

    Standardized float tensors (n, 3, 32, 32) for the CNNs, features computed once for the
    two frozen extractors. Built once per size and process; :func:`run_group` takes it.
    """

    def __init__(self, *, size: int, smoke: bool = False):
        self.size, self.smoke = size, smoke
        self.split = playbook_split(smoke=smoke)
        self.schedule = dict(SMOKE_SCHEDULE) if smoke else dict(SCHEDULE[size])
        for part in ("val", "test", "unlabelled"):
            images = self.split[f"{part}_images"]
            if smoke and part == "unlabelled":
                images = images[:50]
            setattr(self, f"{part}_inputs", cifar_images_to_tensor(images))
            setattr(self, f"{part}_labels", torch.from_numpy(self.split[f"{part}_labels"][: len(images)]))
        self._extractors = {}

    def draw(self, draw: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Standardized images, labels and pool indices of one labelled draw."""
        per_class = 2 if self.smoke else self.size
        chosen = draw_indices(self.split["pool_labels"], per_class=per_class, draw=draw)
        return (
            cifar_images_to_tensor(self.split["pool_images"][chosen]),
            torch.from_numpy(self.split["pool_labels"][chosen]),
            chosen,
        )

    def features(self, extractor: str, part: str, indices: np.ndarray | None = None) -> torch.Tensor:
        """Frozen features (n, dim) of ``part`` ("pool", "val" or "test") by ``extractor``."""
        if extractor not in self._extractors:
            self._extractors[extractor] = {"model": _frozen_extractor(extractor)}
        cache = self._extractors[extractor]
        key = part if indices is None else (part, tuple(indices))
        if key not in cache:
            images = self.split[f"{part}_images"]
            images = torch.from_numpy(images if indices is None else images[indices])
            model = cache["model"]
            if extractor == "simclr":
                cache[key] = encode(model, images, prepare=images_to_float)
            else:
                with torch.no_grad():
                    inputs = cifar_images_to_tensor(images.numpy())
                    cache[key] = torch.cat(
                        [model(inputs[start : start + 1000]) for start in range(0, len(inputs), 1000)]
                    )
        return cache[key]


def _frozen_extractor(name: str) -> nn.Module:
    if name == "simclr":
        return load_checkpoint(build_model("cifar10_simclr"), "cifar10_simclr").eval()
    return load_checkpoint(build_model("cifar5_source"), "cifar5_source").eval().body


def _seed(context: Context, draw: int, member: int = 0) -> int:
    return 10_000 * context.size + 100 * draw + member


def _train(
    context: Context, draw: int, *, member: int = 0, dropout_rate: float = 0.0, pretrained: bool = False, **options
) -> dict:
    inputs, labels, _ = context.draw(draw)
    torch.manual_seed(_seed(context, draw, member))
    model = build_network(dropout_rate=dropout_rate, pretrained=pretrained)
    augmented = options.get("augment", False) or options.get("mixup_alpha", 0.0) > 0
    run = train_network(
        model,
        inputs,
        labels,
        val_inputs=context.val_inputs,
        val_labels=context.val_labels,
        seed=_seed(context, draw, member),
        steps=context.schedule["augmented_steps" if augmented else "steps"],
        batch_size=context.schedule["batch_size"],
        **options,
    )
    run["model"] = model
    return run


def _summary(run: dict, test_accuracy: float, started: float) -> dict:
    return {
        "test_accuracy": round(test_accuracy, 5),
        "val_accuracy": round(run["best_val_accuracy"], 5),
        "best_step": run["best_step"],
        "train_accuracy": round(run["train_accuracy"], 5),
        "seconds": round(time.perf_counter() - started, 1),
    }


#: which arms each tuned knob affects: a changed choice drops their stored records
DEPENDENT_ARMS = {
    "learning_rate": tuple(
        arm for arm in ARMS if arm not in ("transfer_frozen", "simclr_probe", "transfer_finetuned", "finetuned_augment")
    ),
    "transfer_learning_rate": ("transfer_finetuned", "distillation", "finetuned_augment"),
    "weight_decay": ("weight_decay", "regularizers"),
    "dropout_rate": ("dropout", "regularizers"),
}


def tune(context: Context, previous: dict | None = None) -> dict:
    """The tuning stage on its own draw: each knob of :data:`TUNING_GRID` chosen by validation.

    ``previous`` (a stored tuning result) lends the validation accuracies it already has, so
    a value added to a grid costs one training run.
    """
    known = (previous or {}).get("validation_accuracies", {})
    scores = {}

    def best_of(knob: str, **fixed) -> float:
        values = TUNING_GRID[knob][:1] if context.smoke else TUNING_GRID[knob]
        scores[knob] = {}
        for value in values:
            options = dict(fixed)
            if knob == "transfer_learning_rate":
                options.update(pretrained=True, learning_rate=value)
            else:
                options[knob] = value
            same_context = knob in ("learning_rate", "transfer_learning_rate") or (
                previous is not None and previous["learning_rate"] == fixed.get("learning_rate")
            )
            cached = known.get(knob, {}).get(str(value)) if same_context else None
            scores[knob][str(value)] = (
                cached if cached is not None else _train(context, TUNING_DRAW, **options)["best_val_accuracy"]
            )
        return float(max(scores[knob], key=scores[knob].get))

    learning_rate = best_of("learning_rate")
    return {
        "learning_rate": learning_rate,
        "transfer_learning_rate": best_of("transfer_learning_rate"),
        "weight_decay": best_of("weight_decay", learning_rate=learning_rate),
        "dropout_rate": best_of("dropout_rate", learning_rate=learning_rate),
        "validation_accuracies": scores,
    }


def _tuning_is_current(tuning: dict, smoke: bool) -> bool:
    """Whether a stored tuning result tried every value of :data:`TUNING_GRID`."""
    tried = tuning.get("validation_accuracies", {})
    return all(
        {str(value) for value in (values[:1] if smoke else values)} <= set(tried.get(knob, {}))
        for knob, values in TUNING_GRID.items()
    )


def _probe(context: Context, extractor: str, draw: int) -> dict:
    started = time.perf_counter()
    _, labels, chosen = context.draw(draw)
    train_features = context.features(extractor, "pool", chosen)
    val_scores = {
        str(decay): linear_probe_accuracy(
            train_features, labels, context.features(extractor, "val"), context.val_labels, weight_decay=decay
        )
        for decay in PROBE_WEIGHT_DECAYS
    }
    chosen_decay = float(max(val_scores, key=val_scores.get))
    test_accuracy = linear_probe_accuracy(
        train_features, labels, context.features(extractor, "test"), context.test_labels, weight_decay=chosen_decay
    )
    return {
        "test_accuracy": round(test_accuracy, 5),
        "val_accuracy": round(val_scores[str(chosen_decay)], 5),
        "weight_decay": chosen_decay,
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_group(context: Context, group: str, draw: int, tuning: dict) -> dict:
    """Train and test the arms of ``group`` on one labelled draw; returns ``{arm: record}``.

    Each record holds ``test_accuracy`` (the test set touched once, at the state validation
    chose), ``val_accuracy``, ``best_step``, ``train_accuracy`` and ``seconds``.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; known: {list(GROUPS)}")
    started = time.perf_counter()
    test = lambda model: predict_probabilities(model, context.test_inputs)  # noqa: E731
    rate = dict(learning_rate=tuning["learning_rate"])
    if group == "probes":
        return {
            "transfer_frozen": _probe(context, "cifar5_source", draw),
            "simclr_probe": _probe(context, "simclr", draw),
        }
    if group == "baseline":
        runs = [_train(context, draw, member=member, **rate) for member in range(ENSEMBLE_MEMBERS)]
        probabilities = [test(run["model"]) for run in runs]
        records = {"baseline": _summary(runs[0], _accuracy(probabilities[0], context.test_labels), started)}
        val_probabilities = [predict_probabilities(run["model"], context.val_inputs) for run in runs]
        ensemble_val = _accuracy(torch.stack(val_probabilities).mean(0), context.val_labels)
        inputs, labels, _ = context.draw(draw)
        runs[0]["model"].load_state_dict(runs[0]["final_state"])
        final = dict(
            runs[0],
            best_val_accuracy=runs[0]["final_val_accuracy"],
            best_step=context.schedule["steps"],
            train_accuracy=_accuracy(predict_probabilities(runs[0]["model"], inputs), labels),
        )
        records["full_budget"] = _summary(final, _accuracy(test(runs[0]["model"]), context.test_labels), started)
        ensemble = dict(runs[0], best_val_accuracy=ensemble_val)
        records["ensemble"] = _summary(
            ensemble, _accuracy(torch.stack(probabilities).mean(0), context.test_labels), started
        )
        return records
    if group == "transfer":
        teacher = _train(context, draw, pretrained=True, learning_rate=tuning["transfer_learning_rate"])
        records = {
            "transfer_finetuned": _summary(teacher, _accuracy(test(teacher["model"]), context.test_labels), started)
        }
        soft_labels = predict_probabilities(teacher["model"], context.unlabelled_inputs)
        student = _train(context, draw, unlabelled=(context.unlabelled_inputs, soft_labels), **rate)
        records["distillation"] = _summary(student, _accuracy(test(student["model"]), context.test_labels), started)
        return records
    options = {
        "weight_decay": dict(rate, weight_decay=tuning["weight_decay"]),
        "dropout": dict(rate, dropout_rate=tuning["dropout_rate"]),
        "augment": dict(rate, augment=True),
        "mixup": dict(rate, mixup_alpha=MIXUP_ALPHA),
        "finetuned_augment": dict(pretrained=True, learning_rate=tuning["transfer_learning_rate"], augment=True),
        "regularizers": dict(
            rate, augment=True, weight_decay=tuning["weight_decay"], dropout_rate=tuning["dropout_rate"]
        ),
    }[group]
    run = _train(context, draw, **options)
    return {group: _summary(run, _accuracy(test(run["model"]), context.test_labels), started)}


def run_record(arm: str, *, size: int, draw: int, smoke: bool = False, results_dir: Path | None = None) -> dict:
    """Re-run the group that records ``arm`` for one size and draw, with the stored tuning.

    For the notebook's live check: returns ``{arm: record}`` of the whole group.
    """
    stored = load_results(results_dir)[size]
    group = next(name for name, arms in GROUPS.items() if arm in arms)
    return run_group(Context(size=size, smoke=smoke), group, draw, stored["records"]["tuning"])


# --------------------------------------------------------------------------- results
def results_path(size: int, results_dir: Path | None = None) -> Path:
    return Path(results_dir or RESULTS_DIR) / f"size_{size:03d}.json"


def load_results(results_dir: Path | None = None) -> dict:
    """The stored results, ``{size: {..., "records": {"tuning": ..., "ARM/DRAW": ...}}}``."""
    folder = Path(results_dir or RESULTS_DIR)
    results = {}
    for path in sorted(folder.glob("size_*.json")):
        stored = json.loads(path.read_text())
        results[stored["size"]] = stored
    if not results:
        raise FileNotFoundError(f"no results in {folder}; make them with `python -m labutils.playbook`")
    return results


def _write(path: Path, stored: dict) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n"))


def run_size(size: int, *, draws: int, smoke: bool, results_dir: Path | None, command: str) -> dict:
    """Tuning, then every group over ``draws`` draws for one size; resumes from the results file."""
    from tqdm.auto import tqdm

    path = results_path(size, results_dir)
    stored = json.loads(path.read_text()) if path.is_file() else {"size": size, "records": {}, "wall_time_s": 0.0}
    stored.update(
        command=command,
        smoke=smoke,
        draws=draws,
        schedule=SMOKE_SCHEDULE if smoke else SCHEDULE[size],
        hardware=f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads",
        torch=torch.__version__,
        checkpoints={name: manifest()[name]["sha256"] for name in ("cifar5_source", "cifar10_simclr")},
        arms=dict(ARMS),
    )
    context = Context(size=size, smoke=smoke)
    records = stored["records"]
    started = time.perf_counter()
    if "tuning" not in records or not _tuning_is_current(records["tuning"], smoke):
        previous = records.get("tuning")
        records["tuning"] = tune(context, previous)
        for knob, arms in DEPENDENT_ARMS.items():
            if previous is not None and previous[knob] != records["tuning"][knob]:
                for key in [key for key in records if key.split("/")[0] in arms]:
                    del records[key]  # made with another choice of this knob
        stored["wall_time_s"] = round(stored["wall_time_s"] + time.perf_counter() - started, 1)
        _write(path, stored)
    tasks = [(group, draw) for draw in range(draws) for group in GROUPS]
    bar = tqdm(tasks, desc=f"{size} per class", unit="run")
    for group, draw in bar:
        if all(f"{arm}/{draw}" in records for arm in GROUPS[group]):
            continue
        began = time.perf_counter()
        for arm, record in run_group(context, group, draw, records["tuning"]).items():
            records[f"{arm}/{draw}"] = record
        stored["wall_time_s"] = round(stored["wall_time_s"] + time.perf_counter() - began, 1)
        _write(path, stored)
        bar.set_postfix(group=group, draw=draw)
    return stored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labutils.playbook", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--draws", type=int, default=DRAWS)
    parser.add_argument("--smoke", action="store_true", help="a few steps on tiny draws (checks that it runs)")
    parser.add_argument("--results-dir", default=None, help=f"default {RESULTS_DIR}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error("--draws must be positive")
    set_torch_threads(default=args.threads)
    command = "python -m labutils.playbook " + shlex.join(sys.argv[1:] if argv is None else argv)
    for size in args.sizes:
        stored = run_size(
            size, draws=args.draws, smoke=args.smoke, results_dir=args.results_dir, command=command.strip()
        )
        print(f"{size} per class: {len(stored['records']) - 1} records, {stored['wall_time_s']:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
