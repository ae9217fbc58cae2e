# %% [markdown]
# # 11 · Knowledge distillation
#
# **Objectives.** After this notebook you can:
# - explain soft targets and the temperature $T$, and read a teacher's "dark knowledge";
# - derive the distillation loss $\alpha T^2\,\mathrm{KL}(p_T \,\|\, q_T) + (1-\alpha)\,\mathrm{CE}(y, q)$
#   and show why the factor $T^2$ keeps the soft-target gradients on the scale of the hard ones;
# - implement it from scratch (NumPy), in PyTorch and as a Keras 3 `Distiller` model, checked
#   against each other, and recognise the three common blog bugs (softmax outputs treated as
#   logits, no $T^2$, a `Loss` handed a list);
# - measure when distillation helps a small student (a strong teacher, a student that
#   overfits, an unlabelled transfer set) and when it hurts (a weak teacher).
#
# **Runtime.** fast profile: about 2 min on a 2-core CPU · full profile: about 6 min on a GPU.
#
# **Prerequisites.** 06 (dropout, overfitting); the training loop `labutils.train.fit` from 00.
# The teacher is a checkpoint made by `python -m labutils.pretrain mnist1d_teacher`.

# %% tags=["setup"]
# Setup: imports, the profile's settings and the seed.
# labutils (and so PyTorch) is imported before Keras/TensorFlow: the other order can crash.
from labutils.check import check_array, check_scalar, check_true
from labutils.checkpoints import checkpoint_exists, load_checkpoint, manifest
from labutils.config import seed_everything, settings
from labutils.plot import plot_history
from labutils.pretrain import RECIPES, build_model, mnist1d_split, random_circular_shift
from labutils.train import count_parameters, evaluate, fit, predict

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import keras  # Keras 3 on TensorFlow; imported before seeding so that it gets seeded too
from keras import ops

cfg = settings(
    fast=dict(live_teacher_epochs=2, student_width=256, student_epochs=40, seeds=3,
              transfer_copies=7, distill_epochs=8, sweep_seeds=2,
              temperatures=[1, 4, 8], alphas=[0.5, 0.9], labelled_per_class=32,
              keras_epochs=20),
    full=dict(live_teacher_epochs=2, student_width=256, student_epochs=60, seeds=5,
              transfer_copies=15, distill_epochs=10, sweep_seeds=5,
              temperatures=[1, 2, 4, 8], alphas=[0.5, 0.9], labelled_per_class=32,
              keras_epochs=40),
)
SEED = seed_everything()
DEVICE = "cpu"  # the networks are tiny: a GPU would not be faster
torch.set_num_threads(1)  # tiny networks: one thread is faster than two on a shared CPU
NUM_CLASSES = 10
print(cfg, f"seed={SEED}")

# %% [markdown]
# ## 1. Soft targets and temperature
#
# A classifier's logits $z \in \mathbb R^K$ become probabilities through the softmax. Dividing
# the logits by a **temperature** $T > 0$ first gives the *softened* distribution
#
# $$
# p_i(T) = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)} .
# $$
#
# $T = 1$ is the ordinary softmax; $T \to 0$ tends to the one-hot arg-max; $T \to \infty$
# tends to the uniform distribution. A trained network puts almost all its mass on one class
# at $T=1$, but the *relative* sizes of the tiny probabilities of the wrong classes say which
# classes it finds similar: a "2" that looks a bit like a "7". Hinton et al. (2015) called
# this the teacher's **dark knowledge**. Raising $T$ makes it visible, and a student trained to
# match $p(T)$ receives far more information per example than a one-hot label gives it
# ($K-1$ numbers instead of one index).
#
# We start from scratch in NumPy (a stable softmax subtracts the maximum logit first) and check
# against PyTorch.

# %%
def softmax_with_temperature(logits, *, temperature):
    """Softened softmax along the last axis.

    Parameters
    ----------
    logits : ndarray, shape (..., classes)
    temperature : float > 0

    Returns
    -------
    ndarray, shape (..., classes)
        Rows sum to 1.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


rng = np.random.default_rng(SEED)
random_logits = rng.normal(scale=3.0, size=(5, NUM_CLASSES))
for temperature in (0.5, 1.0, 4.0):
    ours = softmax_with_temperature(random_logits, temperature=temperature)
    theirs = torch.softmax(torch.tensor(random_logits) / temperature, dim=1).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
entropies = {temperature: float(-(probabilities * np.log(probabilities)).sum(axis=1).mean())
             for temperature in (0.5, 1, 4, 100)
             for probabilities in [softmax_with_temperature(random_logits, temperature=temperature)]}
print("mean entropy (nats) by temperature:", {key: round(value, 3) for key, value in entropies.items()},
      f"; log K = {np.log(NUM_CLASSES):.3f}")
assert entropies[0.5] < entropies[1] < entropies[4] < entropies[100] < np.log(NUM_CLASSES) + 1e-9, \
    "the entropy of the softened softmax should grow with the temperature towards log K"

# %% [markdown]
# ### The teacher
#
# Our setting is **MNIST-1D** (Greydanus, 2020): 40-sample signals of ten digit templates,
# shifted, scaled, sheared and noised. It is small enough for a CPU yet separates
# architectures clearly: a 1-D CNN generalizes across the random shifts, an MLP does not.
# The split (3200 train / 800 validation / 1000 test) is `labutils.pretrain.mnist1d_split`,
# the one the teacher checkpoint was trained on.
#
# Training the teacher well takes longer than this notebook may spend, so it comes from a
# checkpoint (`python -m labutils.pretrain mnist1d_teacher`; the manifest says how it was made
# and what it reached). First a short **live** training of the same architecture, so you see
# its loss fall; we keep this under-trained network as a *weak teacher* for Section 4.

# %%
split = mnist1d_split()
x_train, y_train = split["x_train"], split["y_train"]
x_val, y_val = split["x_val"], split["y_val"]
print({key: tuple(value.shape) for key, value in split.items()})

torch.manual_seed(SEED)
weak_teacher = build_model("mnist1d_teacher")
live_history = fit(weak_teacher, (x_train, y_train), (x_val, y_val), epochs=cfg.live_teacher_epochs,
                   optimizer=torch.optim.AdamW(weak_teacher.parameters(), lr=3e-3, weight_decay=1e-2),
                   batch_size=128, seed=SEED, device=DEVICE, progress=False)
plot_history(live_history, title="live teacher training (a few epochs)")
plt.show()
assert live_history["loss"][-1] < live_history["loss"][0], "the live training loss should fall"

# %%
teacher = build_model("mnist1d_teacher")
if checkpoint_exists("mnist1d_teacher"):
    load_checkpoint(teacher, "mnist1d_teacher")  # verifies the sha256 first
    entry = manifest()["mnist1d_teacher"]
    print(f"loaded checkpoint: {entry['command']!r}, {entry['wall_time_s']} s on {entry['hardware']}, "
          f"manifest metrics {entry['metrics']}")
else:  # no checkpoint: train it here with the same recipe (minutes on a CPU)
    recipe = RECIPES["mnist1d_teacher"]
    torch.manual_seed(0)
    teacher = recipe.build()
    recipe.train(teacher, epochs=recipe.epochs[cfg.profile], smoke=False, seed=0)
teacher_val_accuracy = evaluate(teacher, (x_val, y_val), device=DEVICE)["accuracy"]
weak_teacher_val_accuracy = evaluate(weak_teacher, (x_val, y_val), device=DEVICE)["accuracy"]
print(f"teacher: {count_parameters(teacher)} parameters, val accuracy {teacher_val_accuracy:.3f}; "
      f"weak teacher ({cfg.live_teacher_epochs} epochs): {weak_teacher_val_accuracy:.3f}")
assert teacher_val_accuracy > 0.85, f"the teacher should be strong, got {teacher_val_accuracy:.3f}"

# %% [markdown]
# The teacher's soft targets for one validation signal of each of three classes, at three
# temperatures; then the dark knowledge of the whole validation set: row $c$ is the teacher's
# average softened distribution over the signals of true class $c$, with the diagonal
# removed so that the similarities between classes show.

# %%
teacher_val_logits = predict(teacher, x_val, device=DEVICE).numpy()
figure, axes = plt.subplots(1, 4, figsize=(13, 2.6))
shown_classes = (2, 5, 7)
for axis, temperature in zip(axes[:3], (1, 4, 10)):
    for offset, digit in enumerate(shown_classes):
        index = int(np.flatnonzero(y_val.numpy() == digit)[0])
        probabilities = softmax_with_temperature(teacher_val_logits[index], temperature=temperature)
        axis.bar(np.arange(NUM_CLASSES) + 0.27 * (offset - 1), probabilities, width=0.27, label=f"true {digit}")
    axis.set(title=f"T = {temperature}", xticks=range(NUM_CLASSES), ylim=(0, 1))
axes[0].legend(fontsize=7)
soft_val = softmax_with_temperature(teacher_val_logits, temperature=4)
class_similarity = np.stack([soft_val[y_val.numpy() == label].mean(axis=0) for label in range(NUM_CLASSES)])
np.fill_diagonal(class_similarity, np.nan)
image = axes[3].imshow(class_similarity, cmap="viridis")
axes[3].set(title="dark knowledge (T=4)", xlabel="teacher's class", ylabel="true class",
            xticks=range(NUM_CLASSES), yticks=range(NUM_CLASSES))
figure.colorbar(image, ax=axes[3], fraction=0.046)
figure.tight_layout()
plt.show()

# %% [markdown]
# ### The transfer set
#
# Hinton et al. distil on a **transfer set**: inputs the teacher labels with its soft targets,
# which need not carry labels. Ours is the 3200 training signals plus `transfer_copies`
# randomly shifted copies of them (unlabelled: label $-1$). The teacher, trained with such
# shifts, labels them well; the MLP student could not have learned the invariance alone.

# %%
shift_generator = torch.Generator().manual_seed(SEED)
transfer_inputs = torch.cat([x_train] + [random_circular_shift(x_train, max_shift=4, generator=shift_generator)
                                         for _ in range(cfg.transfer_copies)])
transfer_labels = torch.cat([y_train, torch.full((cfg.transfer_copies * len(x_train),), -1)])
teacher_transfer_logits = predict(teacher, transfer_inputs, device=DEVICE)
print(f"transfer set: {len(transfer_inputs)} signals, {int((transfer_labels >= 0).sum())} labelled")

# %% [markdown]
# ## 2. The distillation loss, and why $T^2$
#
# Let $v$ be the teacher's logits and $z$ the student's, $p = \mathrm{softmax}(v/T)$ and
# $q = \mathrm{softmax}(z/T)$ the softened distributions, $y$ the label and
# $q^{(1)} = \mathrm{softmax}(z)$ the student's ordinary prediction. The distillation loss is
#
# $$
# \mathcal L = \alpha\, T^2\, \mathrm{KL}(p \,\|\, q) + (1-\alpha)\, \mathrm{CE}(y, q^{(1)}),
# \qquad \mathrm{KL}(p\,\|\,q) = \sum_i p_i \log \frac{p_i}{q_i}.
# $$
#
# (Minimizing $\mathrm{KL}(p\|q)$ over the student is minimizing the cross-entropy $-\sum_i p_i
# \log q_i$: the two differ by the teacher's entropy, a constant.)
#
# **The gradient.** With $\log q_i = z_i/T - \log\sum_j e^{z_j/T}$ we get
# $\partial \log q_i / \partial z_k = (\delta_{ik} - q_k)/T$, so
#
# $$
# \frac{\partial\, \mathrm{KL}(p\|q)}{\partial z_k} = -\sum_i p_i \frac{\delta_{ik} - q_k}{T}
# = \frac{q_k - p_k}{T}.
# $$
#
# **Its scale.** For large $T$, expand $e^{z_i/T} \approx 1 + z_i/T$; with logits of mean
# zero over the classes (softmax ignores a shift, so we may assume it),
# $q_k \approx 1/K + z_k/(KT)$ and likewise $p_k \approx 1/K + v_k/(KT)$. Hence
#
# $$
# \frac{\partial\, \mathrm{KL}}{\partial z_k} \approx \frac{z_k - v_k}{K\,T^2},
# \qquad
# \frac{\partial\, T^2\,\mathrm{KL}}{\partial z_k} \approx \frac{z_k - v_k}{K}.
# $$
#
# Without the factor, the soft-target gradients shrink as $1/T^2$ and the hard-label term
# (whose gradient $q^{(1)}_k - y_k$ does not depend on $T$) dominates: changing $T$ would
# silently change the effective $\alpha$. With $T^2$ they stay on the same scale for every
# temperature, and at high $T$ the loss becomes matching logits, $\tfrac{1}{2K}\|z-v\|^2$
# (Buciluă et al., 2006). We check both claims numerically.

# %%
def kl_divergence_soft(student_logits, teacher_logits, *, temperature):
    """Mean over rows of KL(p_T || q_T), teacher p and student q softened by ``temperature``.

    Parameters
    ----------
    student_logits, teacher_logits : ndarray, shape (n, classes)
    temperature : float > 0

    Returns
    -------
    float
    """
    teacher_probabilities = softmax_with_temperature(teacher_logits, temperature=temperature)
    student_probabilities = softmax_with_temperature(student_logits, temperature=temperature)
    per_row = (teacher_probabilities * (np.log(teacher_probabilities) - np.log(student_probabilities))).sum(axis=1)
    return float(per_row.mean())


def distillation_loss_numpy(student_logits, teacher_logits, labels, *, temperature, alpha):
    """From-scratch distillation loss and its gradient with respect to the student's logits.

    Parameters
    ----------
    student_logits, teacher_logits : ndarray, shape (n, classes)
    labels : ndarray of int, shape (n,)
    temperature : float > 0
    alpha : float in [0, 1]
        Weight of the soft-target term.

    Returns
    -------
    loss : float
        ``alpha * T**2 * KL(p_T || q_T) + (1 - alpha) * CE(labels, q_1)``, averaged over rows.
    gradient : ndarray, shape (n, classes)
    """
    count = len(labels)
    student_soft = softmax_with_temperature(student_logits, temperature=temperature)
    teacher_soft = softmax_with_temperature(teacher_logits, temperature=temperature)
    student_hard = softmax_with_temperature(student_logits, temperature=1.0)
    one_hot = np.eye(student_logits.shape[1])[labels]
    soft = kl_divergence_soft(student_logits, teacher_logits, temperature=temperature)
    hard = float(-np.log(student_hard[np.arange(count), labels]).mean())
    loss = alpha * temperature**2 * soft + (1 - alpha) * hard
    gradient = (alpha * temperature * (student_soft - teacher_soft)
                + (1 - alpha) * (student_hard - one_hot)) / count
    return loss, gradient


rng = np.random.default_rng(SEED)
student_logits_np = rng.normal(scale=2.0, size=(16, NUM_CLASSES))
teacher_logits_np = rng.normal(scale=4.0, size=(16, NUM_CLASSES))
labels_np = rng.integers(0, NUM_CLASSES, size=16)
loss_np, gradient_np = distillation_loss_numpy(student_logits_np, teacher_logits_np, labels_np,
                                                temperature=4.0, alpha=0.7)
student_logits_torch = torch.tensor(student_logits_np, requires_grad=True)
soft_torch = F.kl_div(F.log_softmax(student_logits_torch / 4.0, dim=1),
                      F.log_softmax(torch.tensor(teacher_logits_np) / 4.0, dim=1),
                      reduction="batchmean", log_target=True)
loss_torch = 0.7 * 16.0 * soft_torch + 0.3 * F.cross_entropy(student_logits_torch, torch.tensor(labels_np))
loss_torch.backward()
print(f"NumPy loss {loss_np:.10f}, autograd loss {loss_torch.item():.10f}")
np.testing.assert_allclose(loss_np, loss_torch.item(), rtol=1e-12)
np.testing.assert_allclose(gradient_np, student_logits_torch.grad.numpy(), rtol=1e-10, atol=1e-14)

# %%
def soft_gradient_norm(student_logits, teacher_logits, *, temperature, scale_by_t_squared):
    """Norm of the gradient of the soft term with respect to the student's logits (NumPy)."""
    student_soft = softmax_with_temperature(student_logits, temperature=temperature)
    teacher_soft = softmax_with_temperature(teacher_logits, temperature=temperature)
    gradient = (student_soft - teacher_soft) / temperature / len(student_logits)
    if scale_by_t_squared:
        gradient = gradient * temperature**2
    return float(np.linalg.norm(gradient))


temperatures = np.array([1, 2, 4, 8, 16, 32, 64], dtype=float)
without = np.array([soft_gradient_norm(student_logits_np, teacher_logits_np, temperature=temperature,
                                       scale_by_t_squared=False) for temperature in temperatures])
with_factor = without * temperatures**2
slope = np.polyfit(np.log(temperatures[3:]), np.log(without[3:]), deg=1)[0]
centered_difference = (student_logits_np - student_logits_np.mean(axis=1, keepdims=True)
                       - teacher_logits_np + teacher_logits_np.mean(axis=1, keepdims=True))
high_temperature_limit = float(np.linalg.norm(centered_difference / NUM_CLASSES / len(student_logits_np)))

figure, axis = plt.subplots(figsize=(4.5, 3))
axis.loglog(temperatures, without, "o-", label="KL alone")
axis.loglog(temperatures, with_factor, "s-", label=r"$T^2\,$KL")
axis.axhline(high_temperature_limit, color="gray", linestyle=":", label=r"$\|z-v\|/(K\,n)$")
axis.set(xlabel="temperature T", ylabel="soft-gradient norm")
axis.legend(fontsize=8)
plt.show()
print(f"log-log slope without T^2 (T >= 8): {slope:.3f} (theory -2)")
print(f"with T^2: norm at T=64 / norm at T=8 = {with_factor[-1] / with_factor[3]:.3f}; "
      f"limit {high_temperature_limit:.4f} vs norm at T=64 {with_factor[-1]:.4f}")
assert -2.1 < slope < -1.9, f"without T^2 the soft gradient should scale as 1/T^2, slope {slope:.3f}"
assert abs(with_factor[-1] / high_temperature_limit - 1) < 0.05, \
    "with T^2 the gradient should approach the logit-matching limit (z - v)/K"

# %% [markdown]
# ## 3. PyTorch and Keras implementations, and three blog bugs
#
# **PyTorch.** `F.kl_div(input, target)` expects the *student's log-probabilities* as `input`
# (not probabilities) and, with `log_target=True`, the teacher's log-probabilities as
# `target`; `reduction="batchmean"` divides by the batch size, the mathematical KL
# (`"mean"` would divide by batch × classes too). We also allow unlabelled rows (label
# $-1$): they contribute only to the soft term, which Section 5 needs.

# %%
def distillation_loss(student_logits, teacher_logits, labels, *, temperature, alpha):
    """Distillation loss ``alpha T^2 KL(p_T || q_T) + (1 - alpha) CE(labels, q)`` in PyTorch.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor, shape (n, classes)
        Logits (not probabilities).
    labels : Tensor of int, shape (n,)
        Class indices; ``-1`` marks an unlabelled row (soft term only).
    temperature : float > 0
    alpha : float in [0, 1]

    Returns
    -------
    Tensor, scalar
        The soft term is averaged over all rows, the hard term over the labelled rows.
    """
    if temperature <= 0 or not 0 <= alpha <= 1:
        raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got {temperature}, {alpha}")
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True)
    labelled = labels >= 0
    hard = (F.cross_entropy(student_logits[labelled], labels[labelled]) if labelled.any()
            else student_logits.sum() * 0.0)
    return alpha * temperature**2 * soft + (1 - alpha) * hard


loss_ours = distillation_loss(torch.tensor(student_logits_np), torch.tensor(teacher_logits_np),
                              torch.tensor(labels_np), temperature=4.0, alpha=0.7)
np.testing.assert_allclose(loss_ours.item(), loss_np, rtol=1e-12)
print(f"PyTorch distillation_loss = {loss_ours.item():.6f} (NumPy {loss_np:.6f})")

# %% [markdown]
# **Keras 3.** The same loss in `keras.ops`, then a `Distiller`: a `keras.Model` that wraps
# the student and overrides `compute_loss`, so the ordinary `fit` loop does the rest. Here
# the teacher's logits are computed once and travel with the labels in `y` (offline
# distillation: the teacher runs once per example, not once per epoch); a `Distiller` that
# holds a Keras teacher would call `self.teacher(x, training=False)` in `compute_loss`
# instead.

# %%
def distillation_loss_keras(student_logits, teacher_logits, labels, *, temperature, alpha):
    """The distillation loss in ``keras.ops`` (backend-agnostic); same arguments as the PyTorch one.

    Every row must be labelled (``labels`` int of shape (n,)).
    """
    student_log_soft = ops.log_softmax(student_logits / temperature, axis=1)
    teacher_log_soft = ops.log_softmax(teacher_logits / temperature, axis=1)
    soft = ops.mean(ops.sum(ops.exp(teacher_log_soft) * (teacher_log_soft - student_log_soft), axis=1))
    hard = ops.mean(keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True))
    return alpha * temperature**2 * soft + (1 - alpha) * hard


class Distiller(keras.Model):
    """Train ``student`` on ``y`` packed as ``[teacher_logits (classes columns) | label]``.

    Parameters
    ----------
    student : keras.Model
        Outputs logits of shape (batch, classes).
    temperature : float > 0
    alpha : float in [0, 1]
    """

    def __init__(self, student, *, temperature, alpha, **kwargs):
        super().__init__(**kwargs)
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got {temperature}, {alpha}")
        self.student = student
        self.temperature = temperature
        self.alpha = alpha

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        classes = ops.shape(y_pred)[1]
        teacher_logits, labels = y[:, :classes], ops.cast(y[:, classes], "int32")
        return distillation_loss_keras(y_pred, teacher_logits, labels,
                                       temperature=self.temperature, alpha=self.alpha)


loss_keras = float(distillation_loss_keras(ops.convert_to_tensor(student_logits_np, dtype="float32"),
                                           ops.convert_to_tensor(teacher_logits_np, dtype="float32"),
                                           ops.convert_to_tensor(labels_np), temperature=4.0, alpha=0.7))
print(f"Keras loss {loss_keras:.6f}, PyTorch loss {loss_ours.item():.6f}")
np.testing.assert_allclose(loss_keras, loss_ours.item(), rtol=1e-5)

# %% [markdown]
# Both frameworks on the *same network's* logits: we copy a PyTorch MLP's weights into a
# Keras MLP (a `Dense` kernel is the transpose of a `Linear` weight), and check that the
# `Distiller` computes the same loss on a batch of real signals and teacher logits.

# %%
def make_student_torch(*, width):
    """MLP student, input (n, 40) -> logits (n, 10)."""
    return nn.Sequential(nn.Linear(40, width), nn.ReLU(), nn.Linear(width, NUM_CLASSES))


def make_student_keras(*, width):
    """The same MLP in Keras."""
    return keras.Sequential([keras.Input(shape=(40,)), keras.layers.Dense(width, activation="relu"),
                             keras.layers.Dense(NUM_CLASSES)])


teacher_train_logits = predict(teacher, x_train, device=DEVICE)
torch.manual_seed(SEED)
student_torch = make_student_torch(width=cfg.student_width)
student_keras = make_student_keras(width=cfg.student_width)
student_keras.set_weights([student_torch[0].weight.detach().numpy().T, student_torch[0].bias.detach().numpy(),
                           student_torch[2].weight.detach().numpy().T, student_torch[2].bias.detach().numpy()])
distiller = Distiller(student_keras, temperature=4.0, alpha=0.5)
batch_x, batch_teacher, batch_labels = x_train[:256], teacher_train_logits[:256], y_train[:256]
packed_targets = np.concatenate([batch_teacher.numpy(), batch_labels.numpy()[:, None]], axis=1).astype("float32")
keras_batch_loss = float(distiller.compute_loss(y=ops.convert_to_tensor(packed_targets),
                                                y_pred=distiller(batch_x.numpy())))
with torch.no_grad():
    torch_batch_loss = distillation_loss(student_torch(batch_x), batch_teacher, batch_labels,
                                         temperature=4.0, alpha=0.5).item()
print(f"same weights, same batch: Keras Distiller {keras_batch_loss:.6f}, PyTorch {torch_batch_loss:.6f}")
np.testing.assert_allclose(keras_batch_loss, torch_batch_loss, rtol=1e-4)

# %% [markdown]
# **Three bugs from blog posts.** Each gives a number, none raises an error:
#
# 1. *Softmax outputs treated as logits.* The model ends in `softmax` and the loss softens
#    its output again: $\mathrm{softmax}(p/T)$ of probabilities $p \in [0,1]$ is nearly
#    uniform for any $T \ge 1$, so the soft term carries almost no signal.
# 2. *No $T^2$.* Section 2: the soft term's gradients shrink as $1/T^2$, so at $T=8$ the
#    student effectively ignores the teacher.
# 3. *A `Loss` handed a list.* Writing `keras.losses.KLDivergence()([labels_one_hot,
#    teacher_soft], [student_probs, student_soft])` to get "both terms at once" runs: Keras
#    treats the lists as two outputs and *averages* the two losses, i.e. a fixed $\alpha=1/2$,
#    no $T^2$, and a KL to the one-hot labels in place of the cross-entropy.

# %%
teacher_batch = batch_teacher.numpy().astype(np.float64)
teacher_probabilities_t1 = softmax_with_temperature(teacher_batch, temperature=1)
soft_from_logits = softmax_with_temperature(teacher_batch, temperature=4)
soft_from_probabilities = softmax_with_temperature(teacher_probabilities_t1, temperature=4)
spread_logits = float(soft_from_logits.max(axis=1).mean())
spread_probabilities = float(soft_from_probabilities.max(axis=1).mean())
print(f"bug 1: mean top soft probability at T=4 from logits {spread_logits:.3f}, "
      f"from softmax outputs {spread_probabilities:.3f} (uniform would be {1 / NUM_CLASSES:.3f})")
assert spread_probabilities < 1.5 / NUM_CLASSES < spread_logits, \
    "softening probabilities instead of logits should give nearly uniform targets"

ratio_t8 = (soft_gradient_norm(student_logits_np, teacher_logits_np, temperature=8, scale_by_t_squared=False)
            / soft_gradient_norm(student_logits_np, teacher_logits_np, temperature=8, scale_by_t_squared=True))
print(f"bug 2: at T=8 the soft gradient without T^2 is {ratio_t8:.4f} of the correct one (1/64 = {1 / 64:.4f})")
assert np.isclose(ratio_t8, 1 / 64), "dropping T^2 divides the soft gradient by T^2"

kl_loss = keras.losses.KLDivergence()
student_batch_logits = student_torch(batch_x).detach().numpy()
one_hot_batch = np.eye(NUM_CLASSES, dtype="float32")[batch_labels.numpy()]
student_probabilities_t1 = softmax_with_temperature(student_batch_logits, temperature=1).astype("float32")
student_soft_t4 = softmax_with_temperature(student_batch_logits, temperature=4).astype("float32")
teacher_soft_t4 = soft_from_logits.astype("float32")
list_loss = float(kl_loss([one_hot_batch, teacher_soft_t4], [student_probabilities_t1, student_soft_t4]))
average_of_two = 0.5 * (float(kl_loss(one_hot_batch, student_probabilities_t1))
                        + float(kl_loss(teacher_soft_t4, student_soft_t4)))
print(f"bug 3: Loss handed lists = {list_loss:.5f}; mean of the two separate KLs = {average_of_two:.5f}; "
      f"the intended loss (alpha=0.5, T=4) = {torch_batch_loss:.5f}")
assert np.isclose(list_loss, average_of_two, rtol=1e-4), "Keras averages the losses of a list"
assert abs(list_loss - torch_batch_loss) > 0.1 * torch_batch_loss, "the list version is not the intended loss"

# %% [markdown]
# ## 4. Experiment: a strong teacher, a small student
#
# The student is an MLP with one hidden layer, several times smaller than the CNN teacher and,
# more importantly, without its translation invariance: trained alone on 3200 signals it
# overfits. We train it alone (cross-entropy on the 3200 labelled signals, `student_epochs`)
# and distilled from the teacher on the transfer set (`distill_epochs`, about the same number
# of steps), with the same optimizer and seeds, and compare validation accuracy averaged over
# seeds. Without the shifted copies, distilling on the 3200 signals alone gained only about
# one point here (measured while writing this notebook): the soft targets help most on
# inputs the labels do not cover. (Exercise for the curious: give the student alone the
# shifted copies with their original labels, i.e. plain augmentation, and compare.)
#
# `labutils.train.fit` calls `loss_fn(outputs, targets)`, so the teacher's logits travel
# with the labels in one target tensor: columns 0–9 are teacher logits, column 10 the label.

# %%
def pack_targets(teacher_logits, labels):
    """Pack ``teacher_logits`` (n, classes) and ``labels`` (n,) into one float tensor (n, classes + 1)."""
    return torch.cat([teacher_logits, labels[:, None].float()], dim=1)


def packed_distillation_loss(*, temperature, alpha):
    """A ``loss_fn(student_logits, packed_targets)`` for :func:`labutils.train.fit`."""
    def loss_fn(student_logits, packed):
        return distillation_loss(student_logits, packed[:, :NUM_CLASSES], packed[:, NUM_CLASSES].long(),
                                 temperature=temperature, alpha=alpha)
    return loss_fn


def train_student(inputs, labels, *, seed, teacher_logits=None, temperature=4.0, alpha=0.5):
    """Train an MLP student alone (``teacher_logits=None``) or distilled; return it.

    Parameters
    ----------
    inputs : Tensor, shape (n, 40)
    labels : Tensor of int, shape (n,)
        ``-1`` marks unlabelled rows (used only when distilling).
    seed : int
    teacher_logits : Tensor, shape (n, 10), optional
    temperature, alpha : float
    """
    torch.manual_seed(seed)
    student = make_student_torch(width=cfg.student_width)
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    if teacher_logits is None:
        labelled = labels >= 0
        fit(student, (inputs[labelled], labels[labelled]), epochs=cfg.student_epochs, optimizer=optimizer,
            batch_size=128, metrics=None, seed=seed, device=DEVICE, progress=False)
    else:
        fit(student, (inputs, pack_targets(teacher_logits, labels)), epochs=cfg.distill_epochs,
            optimizer=optimizer, loss_fn=packed_distillation_loss(temperature=temperature, alpha=alpha),
            batch_size=128, metrics=None, seed=seed, device=DEVICE, progress=False)
    return student


def val_accuracy(model):
    """Validation accuracy of ``model``."""
    return evaluate(model, (x_val, y_val), device=DEVICE)["accuracy"]


seeds = [SEED + offset for offset in range(cfg.seeds)]
alone_students = [train_student(x_train, y_train, seed=seed) for seed in seeds]
alone_accuracy = np.array([val_accuracy(model) for model in alone_students])
distilled_students = {  # (alpha, temperature) -> one student per seed, reused by the sweep
    (0.5, 4): [train_student(transfer_inputs, transfer_labels, seed=seed, teacher_logits=teacher_transfer_logits,
                             temperature=4.0, alpha=0.5) for seed in seeds]}
distilled_accuracy = np.array([val_accuracy(model) for model in distilled_students[(0.5, 4)]])
print(f"student: {count_parameters(alone_students[0])} parameters (teacher {count_parameters(teacher)})")
print(f"val accuracy per seed: alone {np.round(alone_accuracy, 3)}, distilled (T=4, alpha=0.5) "
      f"{np.round(distilled_accuracy, 3)}")
gain = distilled_accuracy.mean() - alone_accuracy.mean()
print(f"mean: alone {alone_accuracy.mean():.3f}, distilled {distilled_accuracy.mean():.3f}, gain {gain:+.3f}")
assert gain >= 0.02, f"distillation should gain >= 2 points over the student alone, got {gain:+.3f}"

# %% [markdown]
# ### Sweep over $T$ and $\alpha$
#
# Each cell is the mean validation accuracy over the same seeds. We select the best
# setting on validation data, and only then touch the test set, once.

# %%
sweep_alone = alone_accuracy[:cfg.sweep_seeds].mean()
sweep = np.zeros((len(cfg.alphas), len(cfg.temperatures)))
for row, alpha in enumerate(cfg.alphas):
    for column, temperature in enumerate(cfg.temperatures):
        if (alpha, temperature) not in distilled_students:
            distilled_students[(alpha, temperature)] = [train_student(
                transfer_inputs, transfer_labels, seed=seed, teacher_logits=teacher_transfer_logits,
                temperature=temperature, alpha=alpha) for seed in seeds[:cfg.sweep_seeds]]
        sweep[row, column] = np.mean([val_accuracy(model) for model in distilled_students[(alpha, temperature)]])
figure, axis = plt.subplots(figsize=(4.8, 2.4))
image = axis.imshow(sweep, cmap="viridis")
for (row, column), value in np.ndenumerate(sweep):
    axis.text(column, row, f"{value:.3f}", ha="center", va="center", color="white", fontsize=8)
axis.set(xticks=range(len(cfg.temperatures)), xticklabels=cfg.temperatures, xlabel="temperature T",
         yticks=range(len(cfg.alphas)), yticklabels=cfg.alphas, ylabel="alpha",
         title=f"distilled student, val accuracy (alone: {sweep_alone:.3f})")
plt.show()
best_row, best_column = np.unravel_index(np.argmax(sweep), sweep.shape)
best_alpha, best_temperature = cfg.alphas[best_row], cfg.temperatures[best_column]
print(f"best on validation: T={best_temperature}, alpha={best_alpha}: {sweep.max():.3f}")
assert sweep.max() - sweep_alone >= 0.02, "the best distilled setting should gain >= 2 points"

# %%
test_data = (split["x_test"], split["y_test"])
best_students = distilled_students[(best_alpha, best_temperature)]
test_alone = np.mean([evaluate(model, test_data, device=DEVICE)["accuracy"]
                      for model in alone_students[:len(best_students)]])
test_distilled = np.mean([evaluate(model, test_data, device=DEVICE)["accuracy"] for model in best_students])
test_teacher = evaluate(teacher, test_data, device=DEVICE)["accuracy"]
print(f"test accuracy (touched once): teacher {test_teacher:.3f}, student alone {test_alone:.3f}, "
      f"distilled (T={best_temperature}, alpha={best_alpha}) {test_distilled:.3f}")
assert test_distilled - test_alone >= 0.015, \
    f"the selected distilled student should beat the student alone on test: {test_distilled:.3f} vs {test_alone:.3f}"

# %% [markdown]
# ### When distillation hurts: a weak teacher
#
# The soft targets carry the teacher's mistakes along with its dark knowledge. With
# $\alpha=0.9$ the student spends most of its loss imitating the teacher, so a teacher
# *worse* than what the student reaches alone pulls it down: the student learns the weak
# teacher's function, errors included. (This is what the calibration run in the issue hit:
# a 57% teacher made its student 3–10 points worse.) Distillation also cannot help a student
# too small to fit even the hard labels, and the keras-io example's recorded run, with a
# student nearly as good as its teacher, gained nothing: there was little to transfer.

# %%
weak_teacher_transfer_logits = predict(weak_teacher, transfer_inputs, device=DEVICE)
weak_distilled_accuracy = np.array([val_accuracy(train_student(
    transfer_inputs, transfer_labels, seed=seed, teacher_logits=weak_teacher_transfer_logits,
    temperature=4.0, alpha=0.9))
    for seed in seeds])
print(f"weak teacher {weak_teacher_val_accuracy:.3f}; student alone {alone_accuracy.mean():.3f}; "
      f"distilled from the weak teacher (T=4, alpha=0.9) {weak_distilled_accuracy.mean():.3f}")
assert weak_distilled_accuracy.mean() < alone_accuracy.mean() - 0.03, \
    "distilling a teacher weaker than the student should hurt"

# %% [markdown]
# ## 5. Distillation as regularization: few labels and an unlabelled transfer set
#
# Labels are often scarce while unlabelled inputs are cheap. Suppose only
# `labelled_per_class` signals per class are labelled (the teacher came from elsewhere,
# trained on more data). Alone, the student sees only those. Distilled, it also learns from
# the teacher's soft targets on the *unlabelled* signals, the **transfer set** (rows with
# label $-1$: soft term only). The soft targets act as a strong, data-dependent
# regularizer; Hinton et al. trained a speech model on 3% of the data this way without
# overfitting.

# %%
def few_labels(labels, *, per_class, seed):
    """Copy of ``labels`` (Tensor (n,)) keeping ``per_class`` labels per class, -1 elsewhere."""
    rng = np.random.default_rng(seed)
    kept = torch.full_like(labels, -1)
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(labels.numpy() == label)
        chosen = rng.choice(members, size=per_class, replace=False)
        kept[chosen] = labels[chosen]
    return kept


few_alone, few_distilled = [], []
for seed in seeds:
    partial_labels = few_labels(y_train, per_class=cfg.labelled_per_class, seed=seed)
    few_alone.append(val_accuracy(train_student(x_train, partial_labels, seed=seed)))
    partial_transfer_labels = torch.cat([partial_labels, transfer_labels[len(x_train):]])
    few_distilled.append(val_accuracy(train_student(transfer_inputs, partial_transfer_labels, seed=seed,
                                                    teacher_logits=teacher_transfer_logits,
                                                    temperature=4.0, alpha=0.5)))
few_alone, few_distilled = np.array(few_alone), np.array(few_distilled)
print(f"{cfg.labelled_per_class} labels per class: alone {np.round(few_alone, 3)} (mean {few_alone.mean():.3f}); "
      f"distilled with {len(transfer_inputs) - NUM_CLASSES * cfg.labelled_per_class} unlabelled signals "
      f"{np.round(few_distilled, 3)} (mean {few_distilled.mean():.3f})")
assert few_distilled.mean() > few_alone.mean() + 0.05, \
    "with few labels, distillation through an unlabelled transfer set should gain > 5 points"

# %% [markdown]
# ### The Keras Distiller, trained
#
# The same experiment's distilled student, trained with `Distiller.fit`: the loss falls and
# the student lands in the same range as its PyTorch twin (the two frameworks draw different
# initial weights and batch orders, so we compare ranges, not digits).

# %%
keras.utils.set_random_seed(SEED)
keras_student = make_student_keras(width=cfg.student_width)
keras_distiller = Distiller(keras_student, temperature=4.0, alpha=0.5)
keras_distiller.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3))
keras_history = keras_distiller.fit(
    x_train.numpy(), pack_targets(teacher_train_logits, y_train).numpy(),
    epochs=cfg.keras_epochs, batch_size=128, verbose=0)
keras_val_accuracy = float(np.mean(np.argmax(keras_student.predict(x_val.numpy(), verbose=0), axis=1) == y_val.numpy()))
keras_losses = keras_history.history["loss"]
print(f"Keras Distiller: loss {keras_losses[0]:.3f} -> {keras_losses[-1]:.3f}, val accuracy {keras_val_accuracy:.3f} "
      f"(PyTorch distilled students: {distilled_accuracy.min():.3f}-{distilled_accuracy.max():.3f})")
assert keras_losses[-1] < 0.5 * keras_losses[0], "the Keras distiller's loss should fall"
assert keras_val_accuracy > alone_accuracy.mean() - 0.05, "the Keras distilled student should be in range"

# %% [markdown]
# ## Summary
#
# - Softening logits with a temperature exposes the teacher's similarities between classes
#   ("dark knowledge"); a student matching them gets $K-1$ numbers per example instead of one.
# - The loss is $\alpha T^2 \mathrm{KL}(p_T\|q_T) + (1-\alpha)\mathrm{CE}(y, q)$; the soft
#   gradient is $(q-p)/T$ and scales as $1/T^2$ for large $T$, so the $T^2$ factor keeps both
#   terms on one scale (at high $T$ it becomes logit matching).
# - Losses take **logits**; `F.kl_div` takes the student's log-probabilities and
#   `reduction="batchmean"`; never soften softmax outputs; never hand a Keras `Loss` lists.
# - Distillation helped here because the teacher was strong and the student overfit;
#   it hurt with a teacher weaker than the student, and gained most with few labels and an
#   unlabelled transfer set.

# %% [markdown]
# ## Exercises
#
# Exercises use only what the setup cell defines (and the cells of this section).

# %% [markdown]
# ### Exercise 1 · The softened softmax
#
# Write `soft_targets`, the softmax of `logits / temperature` along the last axis, for the
# logits below at $T = 3$, using `torch` (hint: subtracting the row maximum changes nothing).

# %%
exercise_logits = torch.tensor([[4.0, 1.0, -2.0], [0.5, 0.5, 3.0]])

# %% tags=["solution"] jupyter={"source_hidden": true}
### BEGIN SOLUTION
# stub: soft_targets = None
scaled = exercise_logits / 3.0
soft_targets = torch.exp(scaled - scaled.max(dim=1, keepdim=True).values)
soft_targets = soft_targets / soft_targets.sum(dim=1, keepdim=True)
### END SOLUTION

# %% tags=["check"]
check_array(soft_targets, torch.softmax(exercise_logits / 3.0, dim=1), name="soft_targets", rtol=1e-6)

# %% [markdown]
# ### Exercise 2 · Fix the planted bug
#
# `buggy_distillation_loss` below is copied from a blog post. It has **two** bugs from
# Section 3. Write `fixed_loss`, the correct distillation loss (T=4, alpha=0.7) on the same
# tensors, and `gradient_ratio`, the norm of the buggy loss's gradient divided by the norm of
# the correct one's (both with respect to `exercise_student`; use alpha=1 for both so that
# only the soft term counts).

# %%
def buggy_distillation_loss(student_logits, teacher_logits, labels, *, temperature, alpha):
    """A blog's distillation loss (do not copy)."""
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.softmax(torch.softmax(teacher_logits, dim=1) / temperature, dim=1),
                    reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


exercise_generator = torch.Generator().manual_seed(0)
exercise_student = torch.randn(32, 10, generator=exercise_generator)
exercise_teacher = 3 * torch.randn(32, 10, generator=exercise_generator)
exercise_labels = torch.randint(0, 10, (32,), generator=exercise_generator)

# %% tags=["solution"] jupyter={"source_hidden": true}
### BEGIN SOLUTION
# stub: fixed_loss = None
# stub: gradient_ratio = None
def correct_loss(student_logits, teacher_logits, labels, *, temperature, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True)
    return alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


fixed_loss = correct_loss(exercise_student, exercise_teacher, exercise_labels, temperature=4.0, alpha=0.7)
gradient_norms = []
for loss_function in (buggy_distillation_loss, correct_loss):
    student_copy = exercise_student.clone().requires_grad_(True)
    loss_function(student_copy, exercise_teacher, exercise_labels, temperature=4.0, alpha=1.0).backward()
    gradient_norms.append(student_copy.grad.norm().item())
gradient_ratio = gradient_norms[0] / gradient_norms[1]
### END SOLUTION

# %% tags=["check"]
check_scalar(fixed_loss, 4.63766, name="fixed_loss", rtol=1e-4)
check_true(None if gradient_ratio is None else gradient_ratio < 0.2,
           "the buggy soft gradient should be much smaller (no T^2, and softened probabilities "
           "are nearly uniform)", name="gradient_ratio")

# %% [markdown]
# ### Exercise 3 · Predict, then measure: the high-temperature limit
#
# Section 2 says that for large $T$, $T^2\,\mathrm{KL}(p_T\|q_T) \approx \frac{1}{2K}
# \|\tilde z - \tilde v\|^2$ per row, where $\tilde z, \tilde v$ are the logits with their
# row means subtracted. Compute `kl_at_high_temperature`, the batch mean of
# $T^2\,\mathrm{KL}$ at $T=100$ for `exercise_student` and `exercise_teacher`, and
# `logit_matching`, the batch mean of $\|\tilde z - \tilde v\|^2 / (2K)$.

# %% tags=["solution"] jupyter={"source_hidden": true}
### BEGIN SOLUTION
# stub: kl_at_high_temperature = None
# stub: logit_matching = None
temperature = 100.0
kl_at_high_temperature = temperature**2 * F.kl_div(
    F.log_softmax(exercise_student / temperature, dim=1),
    F.log_softmax(exercise_teacher / temperature, dim=1), reduction="batchmean", log_target=True)
centered = (exercise_student - exercise_student.mean(dim=1, keepdim=True)
            - exercise_teacher + exercise_teacher.mean(dim=1, keepdim=True))
logit_matching = (centered**2).sum(dim=1).mean() / (2 * 10)
### END SOLUTION

# %% tags=["check"]
check_scalar(kl_at_high_temperature, 5.67198, name="kl_at_high_temperature", rtol=1e-4)
check_scalar(logit_matching, 5.65227, name="logit_matching", rtol=1e-4)
check_true(abs(kl_at_high_temperature / logit_matching - 1) < 0.01,
           "at T=100 the scaled KL is logit matching to within 1%", name="kl_at_high_temperature")

# %% [markdown]
# ## References
#
# - G. Hinton, O. Vinyals, J. Dean, *Distilling the Knowledge in a Neural Network* (2015),
#   arXiv:1503.02531: soft targets, temperature, the $T^2$ factor; MNIST 146 → 74 test errors.
# - C. Buciluă, R. Caruana, A. Niculescu-Mizil, *Model Compression* (KDD 2006): matching
#   logits, the high-temperature limit.
# - J. H. Cho, B. Hariharan, *On the Efficacy of Knowledge Distillation* (ICCV 2019): when a
#   better teacher makes a worse student.
# - S. Stanton et al., *Does Knowledge Distillation Really Work?* (NeurIPS 2021).
# - S. Greydanus, *Scaling down Deep Learning* (2020), arXiv:2011.14439: MNIST-1D.
# - PyTorch tutorial *Knowledge Distillation* (CIFAR-10, 69.9% → 70.8%);
#   [`torch.nn.functional.kl_div`](https://pytorch.org/docs/stable/generated/torch.nn.functional.kl_div.html)
#   (log-probabilities as input, `reduction="batchmean"`).
# - keras-io example *Knowledge Distillation* (a `Distiller` model; its recorded run shows no
#   gain); [`keras.Model.compute_loss`](https://keras.io/api/models/model_training_apis/).
# - Blog errors corrected here: softening softmax outputs, dropping $T^2$, handing a Keras
#   `Loss` lists, `KLDivLoss` given probabilities or `reduction="mean"`.
