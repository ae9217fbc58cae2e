# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Image data augmentation
#
# **Objectives.** After this notebook you can:
# - name the common image transforms and say which nuisance each teaches a model to ignore;
# - write the same augmentation pipeline in `torchvision.transforms.v2` and in Keras 3
#   preprocessing layers, and know that `ImageDataGenerator` is legacy;
# - write a fast batched augmentation on tensors (random affine through a sampling grid,
#   per-sample colour factors), check it against the library, and time it;
# - tell label-preserving transforms from label-changing ones, and see that too strong an
#   augmentation hurts;
# - augment the training data only, and measure what augmentation, mixup, CutMix and
#   test-time augmentation do for a small CNN trained on 500 CIFAR-10 images.
#
# **Runtime.** fast profile: about 2.5 min on a 2-core CPU · full profile: about 8 min on a GPU.
#
# **Prerequisites.** `04` (overfitting and learning curves); PyTorch tensors and `labutils.train.fit`.

# %% tags=["setup"]
# Setup: imports, the profile's settings and the seed.
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.linear_model import LogisticRegression
from torch import nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from labutils.check import check_array, check_scalar, check_true
from labutils.config import seed_everything, set_torch_threads, settings, torch_device
from labutils.data import load_cifar10, load_digits, stratified_subset
from labutils.plot import show_images
from labutils.train import Callback, LearningRateScheduler, evaluate, fit, predict

import keras  # Keras 3 (TensorFlow backend) for section 2: after PyTorch and labutils (the
#               other order crashes torchvision's import), before seeding (so it gets seeded)

cfg = settings(
    fast=dict(train_per_class=50, val_per_class=400, epochs=60, validate_every=5, width=16,
              timing_images=512),
    full=dict(train_per_class=500, val_per_class=1000, epochs=60, validate_every=5, width=32,
              timing_images=2048),
)
SEED = seed_everything()
DEVICE = torch_device()
THREADS = set_torch_threads()  # CNNs keep PyTorch's default (one thread per core)
print(cfg, f"seed={SEED}", f"device={DEVICE}", f"torch threads={THREADS}")

# %% [markdown]
# ## 1. The transforms, and what each teaches the model to ignore
#
# A classifier $f$ should give the same answer for an image $x$ and for $g(x)$ whenever $g$
# does not change what the image shows: $f(g(x)) = f(x)$ for every nuisance $g$ in a set
# $G$. Data augmentation trains on $(g(x), y)$ with $g$ drawn at random, which minimizes
#
# $$\hat R_{\text{aug}}(f) = \frac1n \sum_{i=1}^n \mathbb{E}_{g \sim \mathcal G}\,
#   \ell\big(f(g(x_i)), y_i\big),$$
#
# an estimate of the risk on a *larger* distribution: every training image stands for the
# whole orbit $\{g(x_i)\}$. This helps exactly when the test images look like members of
# those orbits, and it hurts when $g$ changes the label (a 6 turned upside down is a 9) or
# pushes images far from anything the model will see. Each transform encodes a belief:
#
# | transform | the model learns to ignore |
# |---|---|
# | horizontal flip | left/right orientation (not for text, digits, or road signs with arrows) |
# | crop, translation | where the object sits in the frame |
# | rotation | camera roll |
# | scale (zoom) | distance to the object |
# | shear | mild changes of viewpoint |
# | brightness, contrast | exposure and lighting |
# | saturation, hue, grayscale | colour casts, white balance; grayscale: colour altogether |
# | Gaussian noise | sensor noise |
# | blur | focus and motion blur, low resolution |
# | cutout / random erasing | occlusion: no single part of the object is indispensable |
#
# Below, each transform from `torchvision.transforms.v2` applied to a real photograph
# (scikit-image's `chelsea`). The v2 transforms take a tensor `(channels, height, width)` in
# `[0, 1]` and draw their random parameters on each call.

# %%
photo = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)  # uint8 (3, 300, 451)
photo = TF.to_dtype(TF.resize(photo, [96, 144], antialias=True), torch.float32, scale=True)

gallery = {
    "original": v2.Identity(),
    "flip": v2.RandomHorizontalFlip(p=1.0),
    "crop": v2.RandomResizedCrop(size=(96, 144), scale=(0.4, 0.7), antialias=True),
    "translate": v2.RandomAffine(degrees=0, translate=(0.2, 0.2)),
    "rotate": v2.RandomRotation(degrees=30),
    "scale": v2.RandomAffine(degrees=0, scale=(0.6, 0.8)),
    "shear": v2.RandomAffine(degrees=0, shear=25),
    "brightness": v2.ColorJitter(brightness=(1.6, 1.6)),
    "contrast": v2.ColorJitter(contrast=(0.4, 0.4)),
    "saturation": v2.ColorJitter(saturation=(2.5, 2.5)),
    "hue": v2.ColorJitter(hue=(0.3, 0.3)),
    "grayscale": v2.Grayscale(num_output_channels=3),
    "noise": v2.GaussianNoise(sigma=0.1),
    "blur": v2.GaussianBlur(kernel_size=9, sigma=3.0),
    "erasing": v2.RandomErasing(p=1.0, scale=(0.1, 0.15), value=0.0),
}
# one photograph, one draw per transform: a list over 15 transforms, not over images
variants = torch.stack([transform(photo).clamp(0, 1) for transform in gallery.values()])
show_images(variants, titles=list(gallery), ncols=5, size=1.7)
plt.show()

# %% [markdown]
# The same idea on CIFAR-10 (32 × 32): eight training images (top row) and three random
# draws of a typical CIFAR pipeline (flip, translation by up to 4 pixels, small rotation and
# zoom, colour jitter). At this resolution a 4-pixel shift is an eighth of the image:
# strength has to be judged relative to the image size.

# %%
cifar_train = load_cifar10("train", progress=False)
cifar_test = load_cifar10("test", progress=False)
CLASS_NAMES = cifar_train.class_names
sample = torch.from_numpy(cifar_train.images[:8]).permute(0, 3, 1, 2).float() / 255
cifar_pipeline = v2.Compose([
    v2.RandomHorizontalFlip(),
    v2.RandomAffine(degrees=10, translate=(0.125, 0.125), scale=(0.9, 1.1)),
    v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
])
draws = [sample] + [torch.stack([cifar_pipeline(image) for image in sample]) for _ in range(3)]
show_images(torch.cat(draws), ncols=8, size=0.9,
            titles=[CLASS_NAMES[label] for label in cifar_train.labels[:8]] + [""] * 24)
plt.show()
assert torch.cat(draws).shape == (32, 3, 32, 32)

# %% [markdown]
# ## 2. The same pipeline in Keras 3
#
# Keras 3 augments with **preprocessing layers** (`RandomFlip`, `RandomTranslation`,
# `RandomRotation`, `RandomZoom`, `RandomContrast`, `RandomBrightness`, ...). They are
# ordinary layers: put them at the start of the model (they are active only when
# `training=True`, so `model.evaluate` and `model.predict` see clean images) or map them
# over a `tf.data` pipeline. Tutorials still show `ImageDataGenerator` with `flow` and
# `fit_generator`: that API is **legacy** (deprecated in TensorFlow 2.9 and absent from
# Keras 3), and `fit_generator` was folded into `fit` long ago. Do not copy it.
#
# Factors are fractions: `RandomTranslation(0.125, 0.125)` shifts by up to 12.5 % of the
# height and width, `RandomRotation(0.03)` by up to 0.03 of a full turn (about 11°).

# %%
keras_pipeline = keras.Sequential([
    keras.layers.RandomFlip("horizontal"),
    keras.layers.RandomTranslation(0.125, 0.125, fill_mode="constant"),
    keras.layers.RandomRotation(0.03, fill_mode="constant"),
    keras.layers.RandomZoom(0.1, fill_mode="constant"),
    keras.layers.RandomContrast(0.3, value_range=(0, 1)),
    keras.layers.RandomBrightness(0.2, value_range=(0, 1)),
], name="augment")
sample_hwc = sample.permute(0, 2, 3, 1).numpy()  # Keras wants channels last
keras_draws = [sample_hwc] + [np.asarray(keras_pipeline(sample_hwc, training=True))
                              for _ in range(2)]
show_images(np.concatenate(keras_draws).clip(0, 1), ncols=8, size=0.9)
plt.show()

# %% [markdown]
# Random layers are hard to test, but a layer whose factor range has equal ends is
# deterministic. Three checks tie Keras, NumPy and (in section 3) our own tensor version
# together: a translation by (+8, −4) pixels with zero fill, a quarter turn
# counter-clockwise (which NumPy calls `rot90`), and an additive brightness shift.

# %%
keras_translate = keras.layers.RandomTranslation(
    height_factor=(0.25, 0.25), width_factor=(-0.125, -0.125),
    fill_mode="constant", interpolation="nearest")
keras_rotate = keras.layers.RandomRotation(factor=(0.25, 0.25), fill_mode="constant",
                                           interpolation="nearest")
keras_brightness = keras.layers.RandomBrightness(factor=(0.2, 0.2), value_range=(0, 1))

numpy_translated = np.zeros_like(sample_hwc)
numpy_translated[:, 8:, :-4] = sample_hwc[:, :-8, 4:]  # down 8 rows, left 4 columns
numpy_rotated = np.rot90(sample_hwc, k=1, axes=(1, 2))
translate_error = np.abs(np.asarray(keras_translate(sample_hwc, training=True)) - numpy_translated).max()
rotate_error = np.abs(np.asarray(keras_rotate(sample_hwc, training=True)) - numpy_rotated).max()
brightness_error = np.abs(np.asarray(keras_brightness(sample_hwc, training=True))
                          - np.clip(sample_hwc + 0.2, 0, 1)).max()
print(f"Keras vs NumPy, max abs difference: translation {translate_error:.2g}, "
      f"rotation {rotate_error:.2g}, brightness {brightness_error:.2g}")
assert max(translate_error, rotate_error, brightness_error) < 1e-6, "Keras layers disagree with NumPy"

# %% [markdown]
# ## 3. Fast batched augmentation on tensors
#
# The v2 transforms draw **one** set of random parameters per call, so a batch tensor gets
# the same flip and the same rotation for every image; per-image randomness needs a Python
# loop over images (what a `DataLoader` with workers does). On a GPU, or on a CPU without
# workers, it is much faster to draw parameters for the whole batch and apply them in a
# few tensor operations.
#
# **Affine transforms through a sampling grid.** Use normalized coordinates
# $u \in [-1, 1]^2$ ($x$ to the right, $y$ down). A rotation by $\theta$, shear $\varphi$,
# scale $s$ and translation $t$ map an input point $u$ to the output point
#
# $$v = A u + t,\qquad A = s\,R(\theta)\,S(\varphi),\quad
# R(\theta) = \begin{pmatrix}\cos\theta & \sin\theta\\ -\sin\theta & \cos\theta\end{pmatrix},\quad
# S(\varphi) = \begin{pmatrix}1 & -\tan\varphi\\ 0 & 1\end{pmatrix}$$
#
# ($R$ turns counter-clockwise on screen because $y$ points down). To fill output pixel
# $v$ we need the input point it came from, $u = A^{-1}(v - t)$: the **inverse** map, which
# `F.affine_grid` evaluates at every output pixel from a $2\times 3$ matrix
# $[A^{-1} \mid -A^{-1}t]$ per image, and `F.grid_sample` reads the input there with
# bilinear interpolation (zeros outside). A shift of $k$ pixels is $2k/W$ in normalized
# units.
#
# **Colour, per sample.** With $\mathrm{gray}(x) = 0.2989R + 0.587G + 0.114B$,
# brightness $b$, contrast $c$ and saturation $\sigma$ are blends, each clipped to $[0, 1]$:
# $x \leftarrow b\,x$; $x \leftarrow c\,x + (1-c)\,\overline{\mathrm{gray}(x)}$ (the mean over
# the image); $x \leftarrow \sigma x + (1-\sigma)\,\mathrm{gray}(x)$. Grayscale is
# $\sigma = 0$. Per-sample factors are tensors of shape `(n, 1, 1, 1)` that broadcast.

# %%
def affine_theta(angle_degrees, translate_pixels, scale, shear_degrees, *, size):
    """Inverse affine matrices for ``F.affine_grid``, one per image.

    Parameters
    ----------
    angle_degrees, scale, shear_degrees : Tensor, shape (n,)
        Counter-clockwise rotation, zoom factor (>1 enlarges) and x-shear per image.
    translate_pixels : Tensor, shape (n, 2)
        Shift (right, down) in pixels.
    size : int
        Image width = height in pixels (square images).

    Returns
    -------
    Tensor, shape (n, 2, 3)
    """
    angle, shear = torch.deg2rad(angle_degrees), torch.deg2rad(shear_degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, sin], dim=-1),
                            torch.stack([-sin, cos], dim=-1)], dim=-2)
    shear_matrix = torch.zeros_like(rotation)
    shear_matrix[:, 0, 0] = shear_matrix[:, 1, 1] = 1.0
    shear_matrix[:, 0, 1] = -torch.tan(shear)
    forward = scale[:, None, None] * rotation @ shear_matrix
    inverse = torch.linalg.inv(forward)
    shift = 2.0 * translate_pixels / size
    return torch.cat([inverse, -(inverse @ shift[..., None])], dim=-1)


def batched_affine(images, *, angle_degrees, translate_pixels, scale, shear_degrees):
    """Apply one affine transform per image with a sampling grid (zeros outside).

    Parameters
    ----------
    images : Tensor, shape (n, channels, size, size)
    angle_degrees, scale, shear_degrees : Tensor, shape (n,)
    translate_pixels : Tensor, shape (n, 2)

    Returns
    -------
    Tensor, shape (n, channels, size, size)
    """
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"expected square images (n, c, s, s), got {tuple(images.shape)}")
    theta = affine_theta(angle_degrees, translate_pixels, scale, shear_degrees,
                         size=images.shape[-1]).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def grayscale(images):
    """Luma of RGB images, shape (n, 3, h, w) -> (n, 1, h, w), ITU-R 601 weights as in torchvision."""
    weights = torch.tensor([0.2989, 0.587, 0.114], dtype=images.dtype, device=images.device)
    return (images * weights[:, None, None]).sum(dim=1, keepdim=True)


def batched_color(images, *, brightness, contrast, saturation):
    """Per-sample brightness, contrast and saturation factors (1 = unchanged).

    Parameters
    ----------
    images : Tensor, shape (n, 3, h, w), values in [0, 1]
    brightness, contrast, saturation : Tensor, shape (n,)

    Returns
    -------
    Tensor, shape (n, 3, h, w), values in [0, 1]
    """
    def per_image(factor):
        return factor.to(images.dtype)[:, None, None, None]
    images = (images * per_image(brightness)).clamp(0, 1)
    mean_gray = grayscale(images).mean(dim=(1, 2, 3), keepdim=True)
    images = (per_image(contrast) * images + (1 - per_image(contrast)) * mean_gray).clamp(0, 1)
    images = (per_image(saturation) * images + (1 - per_image(saturation)) * grayscale(images))
    return images.clamp(0, 1)


# %% [markdown]
# Check against the library: for the same parameters, `torchvision`'s per-image
# `affine`, `adjust_brightness`, `adjust_contrast` and `adjust_saturation` must give the
# same pixels. (The loop over eight images is only in the check.)

# %%
generator = torch.Generator().manual_seed(SEED)
count = len(sample)
angles = torch.empty(count).uniform_(-30, 30, generator=generator)
shifts = torch.randint(-4, 5, (count, 2), generator=generator).float()
scales = torch.empty(count).uniform_(0.8, 1.2, generator=generator)
shears = torch.empty(count).uniform_(-15, 15, generator=generator)
factors = [torch.empty(count).uniform_(0.6, 1.4, generator=generator) for _ in range(3)]

ours_affine = batched_affine(sample, angle_degrees=angles, translate_pixels=shifts,
                             scale=scales, shear_degrees=shears)
ours_color = batched_color(sample, brightness=factors[0], contrast=factors[1], saturation=factors[2])
library_affine = torch.stack([  # TF.affine counts angles clockwise, TF.rotate anticlockwise
    TF.affine(image, angle=-float(angle), translate=[float(shift[0]), float(shift[1])],
              scale=float(zoom), shear=[float(shear), 0.0],
              interpolation=v2.InterpolationMode.BILINEAR)
    for image, angle, shift, zoom, shear in zip(sample, angles, shifts, scales, shears)])
library_color = torch.stack([
    TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(image, float(b)), float(c)), float(s))
    for image, b, c, s in zip(sample, *factors)])
affine_error = (ours_affine - library_affine).abs().max().item()
color_error = (ours_color - library_color).abs().max().item()
quarter_turn = batched_affine(sample, angle_degrees=torch.full((count,), 90.0),
                              translate_pixels=torch.zeros(count, 2), scale=torch.ones(count),
                              shear_degrees=torch.zeros(count))
rotate_error_vs_keras = np.abs(quarter_turn.permute(0, 2, 3, 1).numpy() - numpy_rotated).max()
print(f"max abs difference to torchvision: affine {affine_error:.1e}, colour {color_error:.1e}; "
      f"quarter turn vs Keras/NumPy {rotate_error_vs_keras:.1e}")
assert affine_error < 1e-4 and color_error < 1e-5 and rotate_error_vs_keras < 1e-4, \
    "the batched version disagrees with the library"

# %% [markdown]
# A random pipeline draws every parameter per image, then calls the two functions. Strength
# is one knob that scales every range: `strength=1` is a usual CIFAR setting, and 0 leaves
# only the random flip.

# %%
def random_augment(images, *, strength=1.0, color=True, generator=None):
    """Random flip, affine and colour jitter, drawn independently per image.

    Parameters
    ----------
    images : Tensor, shape (n, 3, size, size), values in [0, 1]
    strength : float, default 1
        Scales every range: rotation ±10°·strength, shift ±(size/8)·strength pixels,
        zoom 1 ± 0.1·strength, shear ±5°·strength, colour factors 1 ± 0.3·strength.
    color : bool, default True
        Also jitter brightness, contrast and saturation (needs 3 channels).
    generator : torch.Generator, optional

    Returns
    -------
    Tensor, shape (n, 3, size, size)
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    count, size = images.shape[0], images.shape[-1]
    options = dict(generator=generator, device=images.device)

    def uniform(shape, half_width, center=0.0):
        return center + half_width * (2 * torch.rand(shape, **options) - 1)

    flip = torch.rand(count, **options) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    images = batched_affine(images, angle_degrees=uniform(count, 10 * strength),
                            translate_pixels=uniform((count, 2), size / 8 * strength),
                            scale=uniform(count, 0.1 * strength, center=1.0),
                            shear_degrees=uniform(count, 5 * strength))
    if color:
        images = batched_color(images, brightness=uniform(count, 0.3 * strength, 1.0),
                               contrast=uniform(count, 0.3 * strength, 1.0),
                               saturation=uniform(count, 0.3 * strength, 1.0))
    return images


# %% [markdown]
# The classic CIFAR recipe is milder: a random horizontal flip and a shift by up to 4
# pixels (the "pad by 4 and crop 32 × 32" of the ResNet paper, here with zero fill).

# %%
def flip_and_shift(images, *, max_shift=4, generator=None):
    """Random horizontal flip and integer shift of up to ``max_shift`` pixels, per image.

    Parameters
    ----------
    images : Tensor, shape (n, c, size, size)
    max_shift : int
    generator : torch.Generator, optional

    Returns
    -------
    Tensor, shape (n, c, size, size)
    """
    count = images.shape[0]
    options = dict(generator=generator, device=images.device)
    flip = torch.rand(count, **options) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    shifts = torch.randint(-max_shift, max_shift + 1, (count, 2), **options).to(images.dtype)
    zeros = torch.zeros(count, dtype=images.dtype, device=images.device)
    return batched_affine(images, angle_degrees=zeros, translate_pixels=shifts,
                          scale=zeros + 1, shear_degrees=zeros)


# %% [markdown]
# **Timing.** The same pipeline (flip, affine, colour jitter) two ways: the classic
# per-image path (PIL image → `v2.Compose` → tensor, as a `Dataset.__getitem__` does it) and
# the batched tensor version, on the same CIFAR images.

# %%
timing_images = torch.from_numpy(cifar_train.images[:cfg.timing_images]).permute(0, 3, 1, 2)
pil_images = [Image.fromarray(array) for array in cifar_train.images[:cfg.timing_images]]
per_image_pipeline = v2.Compose([
    v2.RandomHorizontalFlip(),
    v2.RandomAffine(degrees=10, translate=(0.125, 0.125), scale=(0.9, 1.1), shear=5),
    v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
    v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
])


def images_per_second(function, count, *, repeats=3):
    """Best-of-``repeats`` throughput of ``function()`` on one CPU thread.

    ``function()`` processes ``count`` images. One thread makes the comparison per core:
    the per-image pipeline runs on one core (a DataLoader adds one worker per core), and
    on a busy machine several threads fighting over few cores distort the timing.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = math.inf
        for _ in range(repeats):
            started = time.perf_counter()
            function()
            best = min(best, time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    return count / best


per_image_rate = images_per_second(
    lambda: torch.stack([per_image_pipeline(image) for image in pil_images]), len(pil_images))
batched_rate = images_per_second(
    lambda: random_augment(timing_images.float() / 255, generator=generator), len(timing_images))
print(f"per-image PIL pipeline: {per_image_rate:8.0f} images/s per core")
print(f"batched tensor version: {batched_rate:8.0f} images/s per core "
      f"({batched_rate / per_image_rate:.1f}x)")
assert batched_rate > 3 * per_image_rate, "the batched version should be several times faster"

# %% [markdown]
# ## 4. Label-preserving or not
#
# A transform is only a nuisance if it keeps the label. Flipping a handwritten digit along
# both axes (a half turn) turns a 6 into something that *is* a 9. A classifier trained on
# unaugmented digits agrees: it reads most upside-down 6s as 9s. Augmenting digits with
# such flips would teach the model that 6 and 9 are the same class.

# %%
digits = load_digits()
digit_images = (digits["images"] / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]
digit_labels = digits["y"]
half = len(digit_labels) // 2
digit_classifier = LogisticRegression(max_iter=2000).fit(
    digit_images[:half].reshape(half, -1), digit_labels[:half])
held_out_sixes = digit_images[half:][digit_labels[half:] == 6]
upside_down = held_out_sixes[:, ::-1, ::-1]  # flip both axes = rotate by 180 degrees
read_as = digit_classifier.predict(upside_down.reshape(len(upside_down), -1))
fraction_nine = float(np.mean(read_as == 9))
show_images(np.concatenate([held_out_sixes[:6], upside_down[:6]]), ncols=6, size=0.9,
            titles=["6"] * 6 + [f"read as {label}" for label in read_as[:6]])
plt.show()
print(f"upside-down 6s read as 9: {fraction_nine:.0%} (as 6: {np.mean(read_as == 6):.0%})")
assert fraction_nine > 0.5, f"expected most flipped 6s to read as 9, got {fraction_nine:.2f}"

# %% [markdown]
# ## 5. Experiment: a small CNN on 500 CIFAR-10 images
#
# 50 training images per class (500 in the full profile), a three-block CNN, with and
# without augmentation (the classic `flip_and_shift`). Validation images are held out from
# the CIFAR training split; the test split is used once, at the end. `fit(..., transform=...)`
# applies the augmentation to each *training* batch on the device; validation batches are
# never transformed. Both runs use the same initialization, the same number of epochs and
# the same cosine learning-rate schedule, and we compare the validation accuracy at the
# end of training.
#
# **A validation set big enough to see the difference.** Two networks trained on the same
# 500 images disagree on a large fraction $d$ of the validation images (about 0.4 here,
# measured below). The difference of their accuracies on $n$ validation images then has a
# standard error of about $\sqrt{d/n}$: 0.020 for $n = 1{,}000$, as large as the effect we
# want to see, and 0.010 for $n = 4{,}000$. Evaluation is cheap next to training (a forward
# pass, no augmentation), so we hold out 400 images per class and, to keep the cost down,
# evaluate them every five epochs (a small `Callback`) rather than after every epoch. The
# training run itself adds noise of the same order (initialization, batch order, even the
# number of CPU threads, which changes the order of floating-point sums), so a single
# comparison like this one can only show a gain that is several standard errors large.
#
# The network ends in a plain linear layer on the flattened $4\times4$ feature maps, not in
# a global average pool. Global pooling builds some translation invariance into the
# architecture, which leaves less for shift augmentation to teach; without it the network
# has to *learn* that a cat on the left is a cat on the right, from data, and with 500
# images it instead memorizes where things were.
#
# Augmentation makes the training problem harder, so it converges more slowly: early on
# the augmented model lags; the unaugmented one soon fits its 500 images (training
# accuracy 100 %) and its validation accuracy stalls, while the augmented one keeps
# improving. Stop after a handful of epochs and you would conclude that augmentation does
# not help.

# %%
def cifar_tensors(dataset, index):
    """Images and labels at ``index`` as tensors.

    Returns
    -------
    images : Tensor, shape (n, 3, 32, 32), float32 in [0, 1]
    labels : Tensor of int64, shape (n,)
    """
    images = torch.from_numpy(dataset.images[index]).permute(0, 3, 1, 2).float() / 255
    return images, torch.from_numpy(dataset.labels[index])


pool = stratified_subset(cifar_train.labels, per_class=cfg.train_per_class + cfg.val_per_class,
                         seed=SEED)
pool_labels = cifar_train.labels[pool]
train_index = np.concatenate([pool[pool_labels == label][:cfg.train_per_class] for label in range(10)])
val_index = np.concatenate([pool[pool_labels == label][cfg.train_per_class:] for label in range(10)])
train_data = cifar_tensors(cifar_train, train_index)
val_data = cifar_tensors(cifar_train, val_index)
val_images, val_labels = val_data
channel_mean = train_data[0].mean(dim=(0, 2, 3))
channel_std = train_data[0].std(dim=(0, 2, 3))
print(f"train {tuple(train_data[0].shape)}, validation {tuple(val_images.shape)}")


class Standardize(nn.Module):
    """Subtract a per-channel mean and divide by a per-channel std; (n, c, h, w) -> same."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32)[:, None, None])
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32)[:, None, None])

    def forward(self, images):
        return (images - self.mean) / self.std


def small_cnn(*, width=cfg.width):
    """Three conv blocks (width, 2 width, 4 width channels), then a linear layer.

    Takes images in [0, 1], shape (n, 3, 32, 32), standardizes them itself (so that
    augmentation can work on plain pixel values) and returns logits, shape (n, 10).
    """
    def block(inputs, outputs):
        return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs),
                             nn.ReLU(), nn.MaxPool2d(2))
    return nn.Sequential(
        Standardize(channel_mean, channel_std),
        block(3, width), block(width, 2 * width), block(2 * width, 4 * width),  # 32 -> 4 pixels
        nn.Flatten(), nn.Linear(4 * width * 4 * 4, 10))


class ValidateEvery(Callback):
    """Evaluate the model on ``data`` after every ``every``-th epoch and after the last one.

    Parameters
    ----------
    data : (images, labels) tensors, shapes (n, 3, h, w) and (n,)
    every : int
    epochs : int
        The number of epochs ``fit`` runs (so that the final model is always evaluated).

    Attributes
    ----------
    epochs_evaluated : list of int (1-based), accuracy : list of float
    """

    def __init__(self, data, *, every, epochs):
        if every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.data, self.every, self.epochs = data, every, epochs
        self.epochs_evaluated, self.accuracy = [], []

    def on_epoch_end(self, epoch, logs):
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            self.epochs_evaluated.append(epoch + 1)
            self.accuracy.append(evaluate(self.trainer.model, self.data, device=DEVICE,
                                          batch_size=1000)["accuracy"])


def train_cnn(*, transform=None, train=train_data, loss_fn=F.cross_entropy,
              metrics=("accuracy",), validate=True, seed=SEED):
    """Train a fresh ``small_cnn`` with Adam and a cosine schedule for ``cfg.epochs``.

    Returns
    -------
    model : nn.Module
    history : dict of per-epoch lists (see ``labutils.train.fit``), plus ``val_epoch``
        and ``val_accuracy`` (every ``cfg.validate_every`` epochs) when ``validate``
    """
    torch.manual_seed(seed)
    model = small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    callbacks = [LearningRateScheduler(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs))]
    if validate:
        callbacks.append(ValidateEvery(val_data, every=cfg.validate_every, epochs=cfg.epochs))
    history = fit(model, train, epochs=cfg.epochs, optimizer=optimizer, loss_fn=loss_fn,
                  metrics=metrics, batch_size=64, transform=transform, callbacks=callbacks,
                  seed=seed, device=DEVICE, progress=False)
    if validate:
        history["val_epoch"], history["val_accuracy"] = (callbacks[-1].epochs_evaluated,
                                                         callbacks[-1].accuracy)
    return model, history


def final_val_accuracy(history):
    """Validation accuracy of the final model (the end of the cosine schedule)."""
    return history["val_accuracy"][-1]


augment_generator = torch.Generator(device=DEVICE).manual_seed(SEED)

started = time.perf_counter()
plain_model, plain_history = train_cnn()
augmented_model, augmented_history = train_cnn(
    transform=lambda batch: flip_and_shift(batch, generator=augment_generator))
print(f"two runs of {cfg.epochs} epochs: {time.perf_counter() - started:.0f} s")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for axis, history, name in zip(axes, [plain_history, augmented_history],
                               ["without augmentation", "with flip + shift"]):
    epochs = np.arange(1, len(history["accuracy"]) + 1)
    axis.plot(epochs, history["accuracy"], label="training")
    axis.plot(history["val_epoch"], history["val_accuracy"], "o-", label="validation")
    axis.set(title=name, xlabel="epoch", ylabel="accuracy")
    axis.grid(alpha=0.3)
axes[0].legend()
plt.show()

plain_val = final_val_accuracy(plain_history)
augmented_val = final_val_accuracy(augmented_history)
print(f"validation accuracy of the final models: without {plain_val:.3f}, "
      f"with augmentation {augmented_val:.3f}, gain {augmented_val - plain_val:+.3f}")
print(f"best validation accuracy of any evaluation: without {max(plain_history['val_accuracy']):.3f}, "
      f"with {max(augmented_history['val_accuracy']):.3f}")
print(f"final training accuracy: without {plain_history['accuracy'][-1]:.3f}, "
      f"with {augmented_history['accuracy'][-1]:.3f}")
disagreement = (predict(plain_model, val_images, device=DEVICE).argmax(dim=1)
                != predict(augmented_model, val_images, device=DEVICE).argmax(dim=1)).float().mean().item()
print(f"the two models disagree on {disagreement:.2f} of the validation images: standard error "
      f"of the gain about {math.sqrt(disagreement / len(val_labels)):.3f}")
assert augmented_val > plain_val + 0.015, \
    f"expected a clear gain from augmentation, got {augmented_val:.3f} vs {plain_val:.3f}"

# %% [markdown]
# **Too strong hurts.** Label-preserving transforms stop helping once they push images
# far from anything seen at test time, or make the training problem harder than this
# small network can learn in its budget. A coarse sweep of the strength, sharing the two
# runs above: none, the mild flip and shift, and the full pipeline of section 3 at
# `strength=3` (rotation ±30°, shift ±12 pixels, zoom ±30 %, shear ±15°, colour factors
# 1 ± 0.9). The strong run cannot even fit its training images, and its validation
# accuracy falls far below no augmentation at all. Between none and too much lies a sweet
# spot; where it lies depends on the model, the data size and the training budget, and
# finding it is a hyperparameter search on validation data.

# %%
strong_model, strong_history = train_cnn(
    transform=lambda batch: random_augment(batch, strength=3.0, generator=augment_generator))
strong_val = final_val_accuracy(strong_history)
sweep = {"none": plain_val, "flip + shift": augmented_val, "strength 3": strong_val}
fig, axis = plt.subplots(figsize=(4, 2.8))
axis.plot(list(sweep), list(sweep.values()), "o-")
axis.set(xlabel="augmentation", ylabel="validation accuracy",
         title=f"{len(train_index)} CIFAR-10 images")
axis.grid(alpha=0.3)
plt.show()
print("validation accuracy:", {key: round(value, 3) for key, value in sweep.items()},
      f"| final training accuracy at strength 3: {strong_history['accuracy'][-1]:.3f}")
assert augmented_val > strong_val + 0.08, \
    f"too strong augmentation should hurt: mild {augmented_val:.3f}, strong {strong_val:.3f}"

# %% [markdown]
# ## 6. Augment the training data only
#
# A widespread tutorial builds two `ImageDataGenerator`s with the same random shifts,
# flips and zooms, one for training and one for validation. Validation then measures
# accuracy on a *different, randomly distorted* validation set at every epoch: the score is
# noisy (it changes between two evaluations of the same model) and biased low, by an
# amount that depends on how each model copes with distortions it may never meet at test
# time, which distorts every comparison made with it. Below, both models are evaluated on
# clean validation images and on copies distorted by the pipeline of section 3
# (`strength=1`), as such a tutorial would.

# %%
def accuracy_on(model, images, labels):
    """Accuracy of ``model`` on (images (n, 3, 32, 32), labels (n,)) tensors."""
    return evaluate(model, (images, labels), device=DEVICE)["accuracy"]


val_generator = torch.Generator(device=DEVICE).manual_seed(SEED + 1)
drops = {}
for name, model in [("without", plain_model), ("with", augmented_model)]:
    clean = accuracy_on(model, val_images, val_labels)
    distorted = [accuracy_on(model, random_augment(val_images.to(DEVICE), generator=val_generator),
                             val_labels) for _ in range(2)]
    drops[name] = clean - float(np.mean(distorted))
    print(f"model trained {name:7} augmentation: clean validation {clean:.3f}, "
          f"augmented validation {distorted[0]:.3f} and {distorted[1]:.3f}")
print(f"drop from augmenting validation: without {drops['without']:.3f}, "
      f"with {drops['with']:.3f}")
assert min(drops.values()) > 0.02, "augmenting the validation set should bias the score down"

# %% [markdown]
# ## 7. Mixup, CutMix and test-time augmentation
#
# **Mixup** (Zhang et al., 2018) trains on convex combinations of pairs,
# $\tilde x = \lambda x_i + (1-\lambda) x_j$ and $\tilde y = \lambda y_i + (1-\lambda) y_j$
# with one-hot $y$ and $\lambda \sim \mathrm{Beta}(\alpha, \alpha)$. **CutMix** (Yun et al.,
# 2019) pastes a rectangle of $x_j$ into $x_i$ and mixes the labels by the *area* actually
# pasted, $\lambda = 1 - \text{box area}/\text{image area}$ (after clipping the box at the
# border). Both need soft labels, so the loss is the cross-entropy with a probability
# vector, $-\sum_k \tilde y_k \log \mathrm{softmax}(z)_k$, which `F.cross_entropy` accepts
# directly. Since this loss is linear in $\tilde y$, it equals
# $\lambda\,\ell(z, y_i) + (1-\lambda)\,\ell(z, y_j)$, the form many implementations use.
#
# Mixing needs the labels, which `fit`'s `transform` does not see, so we hand `fit` an
# iterable that yields mixed batches (one $\lambda$ per batch, pairs from a shuffled copy
# of the batch).

# %%
def mix_batch(images, labels, *, method, alpha, rng, num_classes=10):
    """Mixup or CutMix a batch with a shuffled copy of itself.

    Parameters
    ----------
    images : Tensor, shape (n, c, h, w)
    labels : Tensor of int64, shape (n,)
    method : {"mixup", "cutmix"}
    alpha : float
        Beta(alpha, alpha) parameter of the mixing weight (one weight per batch).
    rng : numpy.random.Generator
        Draws the weight, the partners and the box position.
    num_classes : int, default 10

    Returns
    -------
    mixed_images : Tensor, shape (n, c, h, w)
    soft_labels : Tensor, shape (n, num_classes), rows sum to 1
    """
    if method not in ("mixup", "cutmix"):
        raise ValueError(f"method must be 'mixup' or 'cutmix', got {method!r}")
    count, _, height, width = images.shape
    weight = float(rng.beta(alpha, alpha))
    partner = torch.from_numpy(rng.permutation(count)).to(images.device)
    one_hot = F.one_hot(labels, num_classes).float()
    if method == "mixup":
        mixed = weight * images + (1 - weight) * images[partner]
    else:
        cut_height = int(height * math.sqrt(1 - weight))
        cut_width = int(width * math.sqrt(1 - weight))
        center_y, center_x = int(rng.integers(height)), int(rng.integers(width))
        rows = torch.arange(height, device=images.device)[:, None]
        columns = torch.arange(width, device=images.device)[None, :]
        box = ((rows - center_y).abs() * 2 < cut_height) & ((columns - center_x).abs() * 2 < cut_width)
        mixed = torch.where(box, images[partner], images)
        weight = 1.0 - box.float().mean().item()  # the area actually kept, after clipping
    return mixed, weight * one_hot + (1 - weight) * one_hot[partner]


class MixedBatches:
    """Re-iterable stream of (flipped and shifted, then mixed) training batches for ``fit``.

    Parameters
    ----------
    images : Tensor, shape (n, 3, h, w)
    labels : Tensor of int64, shape (n,)
    method : {"mixup", "cutmix"}
    alpha : float, default 1
    batch_size : int, default 64
    seed : int, default 0
    """

    def __init__(self, images, labels, *, method, alpha=1.0, batch_size=64, seed=0):
        self.images, self.labels = images, labels
        self.method, self.alpha, self.batch_size = method, alpha, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        order = torch.randperm(len(self.labels), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            batch = flip_and_shift(self.images[index], generator=self.generator)
            yield mix_batch(batch, self.labels[index], method=self.method, alpha=self.alpha,
                            rng=self.rng)


mixed_images, soft_labels = mix_batch(sample, torch.arange(8), method="cutmix", alpha=1.0,
                                      rng=np.random.default_rng(SEED))
show_images(mixed_images, ncols=8, size=0.9,
            titles=[f"{row.max():.2f} / {1 - row.max():.2f}" for row in soft_labels])
plt.show()
# the label weight of each image equals the fraction of its pixels that it kept
kept_fraction = (mixed_images == sample).all(dim=1).float().mean(dim=(1, 2))
label_weight = soft_labels[torch.arange(8), torch.arange(8)]
print("kept pixels:", kept_fraction.numpy().round(3), "label weight:", label_weight.numpy().round(3))
assert torch.allclose(soft_labels.sum(dim=1), torch.ones(8)), "soft labels must sum to 1"
assert torch.allclose(kept_fraction, label_weight, atol=0.02), "CutMix labels must follow the area"

# %% [markdown]
# **Test-time augmentation (TTA)** averages the predicted probabilities over a few
# transformed copies of each test image, here the image and its mirror. By Jensen's
# inequality ($-\log$ is convex) the log-loss of the averaged prediction is never above the
# average log-loss of the two views, and it is below when the views disagree.
#
# We train mixup and CutMix models on the same 500 images (on top of the same flip and
# shift, for the same number of epochs) and compare them with the models above. Beyond
# accuracy we measure **overconfidence**: the mean top-class probability minus the
# accuracy. A network trained to 100 % training accuracy on one-hot labels of 500 images
# is far too sure of itself; mixed labels teach it to hedge (Thulasidasan et al., 2019).

# %%
def probabilities(model, images, *, tta=False):
    """Softmax outputs, shape (n, 10); with ``tta`` the mean over the image and its mirror."""
    probs = predict(model, images, device=DEVICE).softmax(dim=1)
    if tta:
        probs = (probs + predict(model, images.flip(-1), device=DEVICE).softmax(dim=1)) / 2
    return probs


def scores_of(probs, labels):
    """Accuracy, log-loss and overconfidence (mean max probability - accuracy) of (n, k) probs."""
    accuracy = (probs.argmax(dim=1) == labels).float().mean().item()
    log_loss = F.nll_loss(probs.clamp_min(1e-12).log(), labels).item()
    return dict(accuracy=accuracy, log_loss=log_loss,
                overconfidence=probs.max(dim=1).values.mean().item() - accuracy)


started = time.perf_counter()
mixed_models = {}
for method in ("mixup", "cutmix"):
    batches = MixedBatches(*train_data, method=method, alpha=1.0, seed=SEED)
    mixed_models[method], _ = train_cnn(train=batches, loss_fn=F.cross_entropy, metrics=None,
                                        validate=False)
print(f"two mixed runs of {cfg.epochs} epochs: {time.perf_counter() - started:.0f} s")

models = {"plain": plain_model, "flip + shift": augmented_model, **mixed_models}
results = {}
for name, model in models.items():
    for tta in (False, True):
        results[name, tta] = scores_of(probabilities(model, val_images, tta=tta), val_labels)
print(f"{'model':13} {'TTA':>5} {'accuracy':>9} {'log-loss':>9} {'overconfidence':>15}")
for (name, tta), score in results.items():
    print(f"{name:13} {str(tta):>5} {score['accuracy']:9.3f} {score['log_loss']:9.3f} "
          f"{score['overconfidence']:15.3f}")

# %% [markdown]
# What holds at this scale, asserted below (the printout above shows the rest):
# - mixed labels make the network far less overconfident than plain training;
# - flip TTA never raises the log-loss above the mean of its two views (Jensen) and, on
#   average over the four models, does not cost accuracy.
#
# Whether mixup or CutMix also *raise accuracy* over flip and shift is not asserted: on
# 500 images and a few dozen epochs they are still underfitting (mixed examples are
# harder to fit than flipped ones), and their accuracy gains in the papers come from
# hundreds of epochs on the full data set; the full profile (5,000 images, more epochs)
# moves toward that regime.

# %%
plain_overconfidence = results["plain", False]["overconfidence"]
for method in ("mixup", "cutmix"):
    assert results[method, False]["overconfidence"] < plain_overconfidence - 0.1, \
        f"{method} should be far less overconfident than plain training"
for name, model in models.items():
    views = [scores_of(probabilities(model, images), val_labels)["log_loss"]
             for images in (val_images, val_images.flip(-1))]
    assert results[name, True]["log_loss"] <= np.mean(views) + 1e-6, "Jensen's inequality"
tta_gain = np.mean([results[name, True]["accuracy"] - results[name, False]["accuracy"]
                    for name in models])
print(f"mean accuracy change from flip TTA over the four models: {tta_gain:+.3f}")
assert tta_gain > -0.005, "flip TTA should not cost accuracy on average"

# %% [markdown]
# Finally, the test set, once: the plain model against the model chosen on validation
# data (the augmented one of section 5), with flip TTA, on all 10,000 CIFAR-10 test images.

# %%
test_images, test_labels = cifar_tensors(cifar_test, np.arange(len(cifar_test)))
test_plain = scores_of(probabilities(plain_model, test_images), test_labels)["accuracy"]
test_augmented = scores_of(probabilities(augmented_model, test_images, tta=True),
                           test_labels)["accuracy"]
print(f"test accuracy: without augmentation {test_plain:.3f}, "
      f"with augmentation + TTA {test_augmented:.3f}")
assert test_augmented > test_plain + 0.01, "the validation gain should carry over to the test set"

# %% [markdown]
# ## Summary
#
# - Each augmentation encodes an invariance: use the ones that keep the label for *your*
#   data (no flips for digits or text) at a strength that keeps images plausible; the
#   strength has a sweet spot between none and too much.
# - `torchvision.transforms.v2` and Keras 3 preprocessing layers express the same pipeline;
#   `ImageDataGenerator` and `fit_generator` are legacy.
# - Per-image transforms are slow; a batched affine (`affine_grid` + `grid_sample`) with
#   per-sample parameters and per-sample colour factors does the same work several times
#   faster and runs on the GPU.
# - On 500 CIFAR-10 images the classic flip and 4-pixel shift gives a clear validation
#   gain that carries over to the test set, but only with enough epochs: the augmented
#   model converges more slowly. Augment the training data only: an augmented validation
#   set is noisy and biased low.
# - Mixup and CutMix mix the labels as well as the pixels and make the network much less
#   overconfident; their accuracy gains need a bigger training budget. Flip TTA costs no
#   training and, by Jensen's inequality, cannot raise the log-loss above its views' mean.

# %% [markdown]
# ## Exercises

# %% [markdown]
# ### Exercise 1 · Random erasing, batched
#
# Write `random_erasing(images, *, erase_height, erase_width, generator)` that zeroes one
# `erase_height × erase_width` rectangle per image, at a random position fully inside the
# image, with no loop over images (build a boolean mask from `torch.arange` and per-image
# corners of shape `(n, 1, 1)`). Then apply it to `exercise_images` (below) with a 10 × 12
# rectangle and store the result in `erased`.

# %%
exercise_images = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0)) + 0.1

# %% tags=["solution"] jupyter={"source_hidden": true}
### BEGIN SOLUTION
# stub: erased = None
def random_erasing(images, *, erase_height, erase_width, generator=None):
    """Zero one (erase_height, erase_width) rectangle per image; images (n, c, h, w)."""
    count, _, height, width = images.shape
    if not (0 < erase_height <= height and 0 < erase_width <= width):
        raise ValueError("the rectangle must fit inside the image")
    top = torch.randint(height - erase_height + 1, (count, 1, 1), generator=generator)
    left = torch.randint(width - erase_width + 1, (count, 1, 1), generator=generator)
    rows = torch.arange(height)[None, :, None]
    columns = torch.arange(width)[None, None, :]
    inside = ((rows >= top) & (rows < top + erase_height)
              & (columns >= left) & (columns < left + erase_width))
    return images.masked_fill(inside[:, None], 0.0)


erased = random_erasing(exercise_images, erase_height=10, erase_width=12,
                        generator=torch.Generator().manual_seed(1))
### END SOLUTION

# %% tags=["check"]
check_true(None if erased is None else erased.shape == exercise_images.shape,
           "erased has the shape of exercise_images", name="erased")
zeroed = (erased == 0).all(dim=1)  # (n, h, w): pixels zero in every channel
check_array(zeroed.sum(dim=(1, 2)), torch.full((64,), 120), name="erased pixels per image")
rows_hit, columns_hit = zeroed.any(dim=2).sum(dim=1), zeroed.any(dim=1).sum(dim=1)
check_true(bool((rows_hit == 10).all() and (columns_hit == 12).all()),
           "each erased region is one 10 x 12 rectangle", name="erased")
check_true(len({tuple(map(int, torch.nonzero(mask)[0])) for mask in zeroed}) > 20,
           "the rectangle moves from image to image", name="erased")

# %% [markdown]
# ### Exercise 2 · Fix the planted bug: augmented validation data
#
# `evaluate_with_pipeline` below is what a popular tutorial does: it applies the training
# pipeline to the validation batches too. Write `evaluate_fixed` that takes the same
# arguments and returns the accuracy on the clean images (it must ignore `pipeline`).
# Then store in `measured_bias` the accuracy of `exercise_model` on `exercise_val` clean
# minus its accuracy with `exercise_pipeline` applied (a float).

# %%
def evaluate_with_pipeline(model, images, labels, pipeline):
    """BUGGY: the validation images go through the random training pipeline."""
    with torch.no_grad():
        return (model(pipeline(images)).argmax(dim=1) == labels).float().mean().item()


exercise_generator = torch.Generator().manual_seed(0)
exercise_val = (torch.rand(256, 1, 8, 8, generator=exercise_generator),
                torch.randint(0, 2, (256,), generator=exercise_generator))
exercise_val[0][exercise_val[1] == 1, :, :, :4] += 0.8  # class 1: bright left half
exercise_model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
with torch.no_grad():
    exercise_model[1].weight.copy_(torch.stack([torch.zeros(64), torch.tensor(([1.0] * 4 + [-1.0] * 4) * 8)]))
    exercise_model[1].bias.fill_(-2.0)
exercise_pipeline = lambda batch: batch.flip(-1)  # noqa: E731  a (label-breaking) mirror

# %% tags=["solution"] jupyter={"source_hidden": true}
### BEGIN SOLUTION
# stub: measured_bias = None
def evaluate_fixed(model, images, labels, pipeline):
    """Accuracy on the clean images; ``pipeline`` is accepted and deliberately unused."""
    with torch.no_grad():
        return (model(images).argmax(dim=1) == labels).float().mean().item()


measured_bias = (evaluate_fixed(exercise_model, *exercise_val, exercise_pipeline)
                 - evaluate_with_pipeline(exercise_model, *exercise_val, exercise_pipeline))
### END SOLUTION

# %% tags=["check"]
check_true(None if measured_bias is None else isinstance(measured_bias, float),
           "measured_bias is a float", name="measured_bias")
clean_accuracy = (exercise_model(exercise_val[0]).argmax(dim=1) == exercise_val[1]).float().mean().item()
check_scalar(evaluate_fixed(exercise_model, *exercise_val, exercise_pipeline), clean_accuracy,
             name="evaluate_fixed(...)")
check_scalar(measured_bias, clean_accuracy - evaluate_with_pipeline(
    exercise_model, *exercise_val, exercise_pipeline), name="measured_bias")
check_true(measured_bias > 0.3, "the augmented score is far too low", name="measured_bias")

# %% [markdown]
# ### Exercise 3 · Mixup with given weights
#
# Write `mixup(images, one_hot, *, weights, partner)` with one mixing weight **per image**
# (`weights` of shape `(n,)`, a variant of the per-batch weight above) and a permutation
# `partner` of shape `(n,)`: return `(weights·x + (1 − weights)·x[partner],
# weights·y + (1 − weights)·y[partner])` with broadcasting. Store the result for the given
# inputs in `mixed_x, mixed_y`.

# %%
mix_generator = torch.Generator().manual_seed(0)
mix_x = torch.rand(6, 3, 4, 4, generator=mix_generator)
mix_y = F.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 3).float()
mix_weights = torch.tensor([1.0, 0.0, 0.5, 0.25, 0.75, 0.9])
mix_partner = torch.tensor([5, 4, 3, 2, 1, 0])

# %% tags=["solution"] jupyter={"source_hidden": true}
### BEGIN SOLUTION
# stub: mixed_x, mixed_y = None, None
def mixup(images, one_hot, *, weights, partner):
    """Per-image mixup: images (n, c, h, w), one_hot (n, k), weights (n,), partner (n,)."""
    image_weights = weights[:, None, None, None]
    label_weights = weights[:, None]
    return (image_weights * images + (1 - image_weights) * images[partner],
            label_weights * one_hot + (1 - label_weights) * one_hot[partner])


mixed_x, mixed_y = mixup(mix_x, mix_y, weights=mix_weights, partner=mix_partner)
### END SOLUTION

# %% tags=["check"]
check_true(None if mixed_y is None else mixed_y.shape == (6, 3), "mixed_y has shape (6, 3)",
           name="mixed_y")
check_array(mixed_y, [[1, 0, 0], [0, 1, 0], [0.5, 0, 0.5], [0.25, 0, 0.75],
                      [0, 1, 0], [0.1, 0, 0.9]], name="mixed_y")
check_array(mixed_x[0], mix_x[0], name="mixed_x[0] (weight 1 keeps the image)")
check_array(mixed_x[1], mix_x[4], name="mixed_x[1] (weight 0 takes the partner)")
check_array(mixed_x[2], (mix_x[2] + mix_x[3]) / 2, name="mixed_x[2]")

# %% [markdown]
# ## References
#
# - Shorten & Khoshgoftaar (2019), *A survey on image data augmentation for deep learning*,
#   Journal of Big Data.
# - Zhang, Cisse, Dauphin & Lopez-Paz (2018), *mixup: Beyond empirical risk minimization*, ICLR.
# - Yun et al. (2019), *CutMix: Regularization strategy to train strong classifiers with
#   localizable features*, ICCV.
# - DeVries & Taylor (2017), *Improved regularization of convolutional neural networks with
#   cutout*; Zhong et al. (2020), *Random erasing data augmentation*, AAAI.
# - Thulasidasan et al. (2019), *On mixup training: improved calibration and predictive
#   uncertainty for deep neural networks*, NeurIPS.
# - Jaderberg et al. (2015), *Spatial transformer networks* (the sampling-grid idea behind
#   `affine_grid` / `grid_sample`).
# - torchvision docs, *Transforming images, videos, boxes and more* (transforms v2); Keras
#   docs, *Image augmentation layers*; TensorFlow docs, `ImageDataGenerator` (deprecated:
#   "not recommended for new code").
# - The error this notebook corrects: tutorials that pass an augmenting
#   `ImageDataGenerator` to `validation_data`.
