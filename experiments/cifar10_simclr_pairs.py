"""Notebook 12, CIFAR-10: SimCLR features against training from scratch, paired over label draws.

Usage (from the repository root)::

    python experiments/cifar10_simclr_pairs.py [--part supervised|simclr|ablation|all] [--smoke]

For each labelled draw (``per_class`` images of each class picked from the 45,000
pretraining images of :func:`labutils.data.cifar10_simclr_split` with
``stratified_subset(..., seed=DRAW_SEED + draw)``), on the 5,000 held-out validation images:

``supervised``
    The same 6-convolution encoder as the SimCLR checkpoint, trained from scratch on the
    labelled images alone with crops and flips (:func:`labutils.simclr.supervised_few_labels`,
    the best validation step kept: selection on validation data flatters this arm, never
    SimCLR). It does not need the checkpoint, so it can run while the encoder pretrains.
``simclr``
    A linear probe and 5-NN on the frozen features of the committed ``cifar10_simclr``
    checkpoint, for the same draws.
``ablation``
    Two short pretraining runs of a narrow encoder (width 16) that differ in one thing:
    with and without colour distortion (jitter and grayscale); then the linear probe at 10
    labels per class on the same draws.

Results go to ``experiments/results/cifar10_simclr_pairs.json``, rewritten atomically
after every record; a record already there is not computed again, so an interrupted run
resumes where it stopped. Notebook 12 reads this file for the arms it does not recompute.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from labutils.augment import images_to_float
from labutils.checkpoints import load_checkpoint, manifest
from labutils.config import set_torch_threads
from labutils.data import cifar10_simclr_split, stratified_subset
from labutils.files import atomic_write
from labutils.pretrain import build_model
from labutils.simclr import (
    build_cifar10_classifier,
    build_cifar10_simclr,
    cifar10_crop_flip_views,
    cifar10_simclr_views,
    encode,
    knn_accuracy,
    linear_probe_accuracy,
    pretrain_simclr,
    supervised_few_labels,
)

RESULTS = Path(__file__).resolve().parent / "results" / "cifar10_simclr_pairs.json"
DRAW_SEED = 2000
#: draws per labels-per-class value (the paired comparison's sample size)
DRAWS = {10: 8, 100: 2}
SUPERVISED = {  # the from-scratch arm: steps and batch per labels-per-class value
    10: dict(steps=400, batch_size=None, evaluate_every=50),
    100: dict(steps=600, batch_size=256, evaluate_every=100),
}
ABLATION = dict(width=16, epochs=5, batch_size=256, per_class=10)


def draw_indices(labels: torch.Tensor, *, per_class: int, draw: int) -> torch.Tensor:
    """The labelled images of one draw (the same for every arm)."""
    return stratified_subset(labels, per_class=per_class, seed=DRAW_SEED + draw)


def crop_flip(images: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    return cifar10_crop_flip_views(images, generator=generator).contiguous(memory_format=torch.channels_last)


def supervised_record(*, split: dict, per_class: int, draw: int, width: int, smoke: bool) -> dict:
    chosen = draw_indices(split["y_train"], per_class=per_class, draw=draw)
    settings = dict(SUPERVISED.get(per_class, SUPERVISED[10]))
    if smoke:
        settings.update(steps=2, evaluate_every=1)
    torch.manual_seed(DRAW_SEED + draw)
    network = build_cifar10_classifier(width=width).to(memory_format=torch.channels_last)
    history: list = []
    accuracy = supervised_few_labels(
        network,
        split["x_train"][chosen],
        split["y_train"][chosen],
        split["x_val"],
        split["y_val"],
        views=crop_flip,
        seed=DRAW_SEED + draw,
        prepare=images_to_float,
        history=history,
        **settings,
    )
    with torch.no_grad():  # training accuracy of the kept weights, without augmentation
        train_predictions = network(images_to_float(split["x_train"][chosen])).argmax(dim=1)
    best = max(history, key=lambda row: row["val_accuracy"])
    return {
        "val_accuracy": accuracy,
        "best_step": best["step"],
        "train_accuracy": float((train_predictions == split["y_train"][chosen]).float().mean()),
        "history": history,
        **settings,
    }


def probe_record(*, features: torch.Tensor, val_features: torch.Tensor, split: dict, per_class: int, draw: int) -> dict:
    chosen = draw_indices(split["y_train"], per_class=per_class, draw=draw)
    arguments = (features[chosen], split["y_train"][chosen], val_features, split["y_val"])
    return {
        "linear_probe": linear_probe_accuracy(*arguments, seed=DRAW_SEED + draw),
        "knn": knn_accuracy(*arguments, neighbours=5),
    }


def pretrain_ablation(split: dict, *, colour: bool, smoke: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_cifar10_simclr(width=ABLATION["width"]).to(memory_format=torch.channels_last)
    strength = {} if colour else dict(jitter_probability=0.0, grayscale_probability=0.0)

    def views(images, *, generator):
        return cifar10_simclr_views(images_to_float(images), generator=generator, **strength).contiguous(
            memory_format=torch.channels_last
        )

    inputs = split["x_train"][:512] if smoke else split["x_train"]
    pretrain_simclr(
        model,
        inputs,
        views=views,
        epochs=1 if smoke else ABLATION["epochs"],
        batch_size=64 if smoke else ABLATION["batch_size"],
        learning_rate=2e-3,
        temperature=0.2,
        seed=0,
        device="cpu",
        max_steps=2 if smoke else None,
        progress=not smoke,
    )
    return model


def load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"records": {}}


def save_results(results: dict, path: Path) -> None:
    """Merge ``results`` into the file (parts may run at once in separate processes), atomically."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = load_results(path)
        merged["records"].update(results["records"])
        merged.setdefault("commands", {}).update(results.get("commands", {}))
        merged.update({key: value for key, value in results.items() if key not in ("records", "commands")})
        if "commands" in results:
            merged.pop("command", None)  # kept per part now
        results["records"].update(merged["records"])  # in place: callers hold this dict
        text = json.dumps(merged, indent=1) + "\n"
        atomic_write(path, lambda temporary: temporary.write_text(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("supervised", "simclr", "ablation", "all"), default="all")
    parser.add_argument(
        "--smoke", action="store_true", help="a few steps on a few images, written to a temporary results file"
    )
    parser.add_argument("--results", type=Path, default=None, help=f"default {RESULTS}")
    parser.add_argument(
        "--colour",
        choices=("on", "off", "both"),
        default="both",
        help="ablation only: pretrain with colour distortion, without it, or both",
    )
    args = parser.parse_args(argv)
    path = args.results or (Path("/tmp/cifar10_simclr_pairs.smoke.json") if args.smoke else RESULTS)
    threads = set_torch_threads()
    results = load_results(path)
    command = shlex.join(
        ["python", "experiments/cifar10_simclr_pairs.py", *(argv if argv is not None else sys.argv[1:])]
    )
    commands = results.setdefault("commands", {})
    if "command" in results:  # a file written before the commands were kept per part
        earlier = results.pop("command")
        commands.setdefault(earlier.rsplit("--part ", 1)[-1].split()[0] if "--part" in earlier else "all", earlier)
    commands[args.part] = command
    results.update(
        hardware=f"{platform.machine()} CPU, {threads} torch threads",
        torch=torch.__version__,
        draw_seed=DRAW_SEED,
        draws=DRAWS,
        supervised=SUPERVISED,
        ablation=ABLATION,
    )
    records = results["records"]
    split = cifar10_simclr_split()
    if args.smoke:
        split = {key: value[:256] for key, value in split.items()}
    draws = {per_class: (1 if args.smoke else count) for per_class, count in DRAWS.items()}
    per_class_values = (2,) if args.smoke else tuple(DRAWS)
    width = manifest().get("cifar10_simclr", {}).get("build_options", {}).get("width", 32)

    def run(key: str, compute, **arguments) -> None:
        if key in records:
            return
        started = time.perf_counter()
        records[key] = compute(**arguments)
        records[key]["seconds"] = round(time.perf_counter() - started, 1)
        save_results(results, path)
        print(f"{key}: { {k: v for k, v in records[key].items() if k != 'history'} }", flush=True)

    if args.part in ("supervised", "all"):
        for per_class in per_class_values:
            for draw in range(draws.get(per_class, 1)):
                run(
                    f"supervised/{per_class}/{draw}",
                    supervised_record,
                    split=split,
                    per_class=per_class,
                    draw=draw,
                    width=width,
                    smoke=args.smoke,
                )
    if args.part in ("simclr", "all"):
        model = load_checkpoint(build_model("cifar10_simclr"), "cifar10_simclr")
        features = encode(model, split["x_train"], prepare=images_to_float)
        val_features = encode(model, split["x_val"], prepare=images_to_float)
        results["checkpoint_sha256"] = manifest()["cifar10_simclr"]["sha256"]
        for per_class in per_class_values:
            for draw in range(draws.get(per_class, 1)):
                run(
                    f"simclr/{per_class}/{draw}",
                    probe_record,
                    features=features,
                    val_features=val_features,
                    split=split,
                    per_class=per_class,
                    draw=draw,
                )
    if args.part in ("ablation", "all"):
        for colour in {"on": (True,), "off": (False,), "both": (True, False)}[args.colour]:
            name = "ablation/" + ("reference" if colour else "no_colour")
            if all(f"{name}/{draw}" in records for draw in range(draws.get(per_class_values[0], 1))):
                continue
            model = pretrain_ablation(split, colour=colour, smoke=args.smoke)
            features = encode(model, split["x_train"], prepare=images_to_float)
            val_features = encode(model, split["x_val"], prepare=images_to_float)
            for draw in range(draws.get(per_class_values[0], 1)):
                run(
                    f"{name}/{draw}",
                    probe_record,
                    features=features,
                    val_features=val_features,
                    split=split,
                    per_class=per_class_values[0],
                    draw=draw,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
