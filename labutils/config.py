"""Course-wide configuration: profiles, per-profile settings, seeding and devices.

Everything here is driven by environment variables so that the same notebook runs
unchanged on a laptop, on a GPU and under the test suite:

``LABUTILS_PROFILE``
    ``fast`` (small experiments, a few minutes on a 2-core CPU), ``full`` (the effect at
    its real size, meant for a GPU) or ``auto`` (the default: ``full`` when PyTorch sees a
    CUDA GPU, else ``fast``).
``LABUTILS_SEED``
    The default seed used by :func:`seed_everything` (0 when unset).
``LABUTILS_TORCH_THREADS``
    CPU threads for PyTorch, set by :func:`set_torch_threads` (overrides the notebook's
    default; unset keeps the notebook's choice).
"""

from __future__ import annotations

import os
import platform
import random
import sys
from typing import Any

import numpy as np

from .plot import use_course_style

# TensorFlow reads these when it is first imported, so they are set before any notebook
# imports it: grow GPU memory on demand (so TensorFlow and PyTorch can share one GPU) and
# keep TensorFlow's C++ start-up chatter out of the notebooks (level 3 also hides the
# "failed call to cuInit" line every machine without a GPU prints; errors still raise in
# Python, and TF_CPP_MIN_LOG_LEVEL=0 shows everything when you need to debug TensorFlow).
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROFILES = ("fast", "full")
DEFAULT_SEED = 0

__all__ = [
    "PROFILES",
    "DEFAULT_SEED",
    "profile",
    "settings",
    "default_seed",
    "seed_everything",
    "torch_device",
    "set_torch_threads",
    "environment_report",
]


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


def profile() -> str:
    """Return the active profile, ``"fast"`` or ``"full"``.

    Read from ``LABUTILS_PROFILE`` each time it is called. ``auto`` (the default) resolves
    to ``"full"`` when a CUDA GPU is available and to ``"fast"`` otherwise.

    Raises
    ------
    ValueError
        If ``LABUTILS_PROFILE`` holds anything but ``fast``, ``full`` or ``auto``.
    """
    value = os.environ.get("LABUTILS_PROFILE", "auto").strip().lower() or "auto"
    if value == "auto":
        return "full" if _cuda_available() else "fast"
    if value not in PROFILES:
        raise ValueError(f"LABUTILS_PROFILE={value!r} is not a profile; use one of 'fast', 'full' or 'auto'.")
    return value


class Settings(dict):
    """A dict whose keys can also be read as attributes (``cfg.epochs``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no setting named {name!r}; available: {sorted(self)}") from None

    def __repr__(self) -> str:  # shown in the notebook's settings cell
        body = ", ".join(f"{key}={value!r}" for key, value in self.items())
        return f"Settings({body})"


def settings(*, fast: dict, full: dict, active_profile: str | None = None) -> Settings:
    """Pick a notebook's settings for the active profile, in one visible cell.

    Parameters
    ----------
    fast, full : dict
        The settings for each profile. Both must have the same keys, so that a notebook
        can never read a setting that one profile forgot.
    active_profile : {"fast", "full"}, optional
        Overrides :func:`profile` (useful in tests).

    Returns
    -------
    Settings
        A dict with attribute access, plus the key ``profile``.

    Examples
    --------
    >>> cfg = settings(fast=dict(epochs=5), full=dict(epochs=50), active_profile="fast")
    >>> cfg.epochs
    5
    """
    if not isinstance(fast, dict) or not isinstance(full, dict):
        raise TypeError("settings() takes two dicts: fast=dict(...), full=dict(...)")
    if set(fast) != set(full):
        missing = sorted(set(fast) ^ set(full))
        raise ValueError(f"fast and full settings must have the same keys; differ in {missing}")
    chosen = profile() if active_profile is None else active_profile
    if chosen not in PROFILES:
        raise ValueError(f"active_profile={chosen!r}; use 'fast' or 'full'")
    values = Settings(fast if chosen == "fast" else full)
    values["profile"] = chosen
    use_course_style()
    return values


def default_seed() -> int:
    """Return the seed from ``LABUTILS_SEED``, or 0 when it is unset.

    Raises
    ------
    ValueError
        If ``LABUTILS_SEED`` is not a non-negative integer.
    """
    raw = os.environ.get("LABUTILS_SEED", "").strip()
    if not raw:
        return DEFAULT_SEED
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(f"LABUTILS_SEED={raw!r} is not an integer") from None
    if seed < 0:
        raise ValueError(f"LABUTILS_SEED={seed} must be >= 0")
    return seed


def seed_everything(seed: int | None = None, *, deterministic: bool = True) -> int:
    """Seed Python, NumPy, PyTorch and (when imported) TensorFlow/Keras.

    Parameters
    ----------
    seed : int, optional
        The seed; defaults to :func:`default_seed` (``LABUTILS_SEED`` or 0).
    deterministic : bool, default True
        Also ask PyTorch and TensorFlow for deterministic kernels where they have them.
        Bit-identical reruns need this on a GPU; on a CPU it costs little.

    Returns
    -------
    int
        The seed that was used, so a notebook can print it.

    Notes
    -----
    TensorFlow is seeded only if ``keras`` or ``tensorflow`` is already imported: importing
    it just to seed it would cost every PyTorch-only notebook several seconds. Import Keras
    first, then call this function.

    Seeding global generators makes a notebook reproducible, but library code should not
    rely on them: functions in ``labutils`` take an explicit ``seed`` argument instead.
    """
    if seed is None:
        seed = default_seed()
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)

    import torch

    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic and torch.cuda.is_available():
        # PyTorch's CPU kernels are already deterministic; on a GPU some are not unless asked.
        # torch.use_deterministic_algorithms loads Triton, which crashes the process when
        # TensorFlow was loaded first (see labutils/__init__.py), so skip it in that case.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        if "tensorflow" not in sys.modules or "triton" in sys.modules:
            torch.use_deterministic_algorithms(True, warn_only=True)

    if "keras" in sys.modules or "tensorflow" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)
        if deterministic and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
    return seed


def set_torch_threads(default: int | None = None) -> int:
    """Set the number of CPU threads PyTorch uses, and return it.

    Tiny models (a few thousand parameters, small batches) spend more time synchronising
    threads than computing: on a 2-core machine with other work running, one thread trained
    small MLPs 5 to 20 times faster than two. Notebooks with such models call
    ``set_torch_threads(default=1)``; convolutional networks keep PyTorch's default.

    Parameters
    ----------
    default : int, optional
        Threads to use when ``LABUTILS_TORCH_THREADS`` is unset; ``None`` keeps PyTorch's
        current setting.

    Returns
    -------
    int
        The number of threads now in use.

    Raises
    ------
    ValueError
        If ``default`` or ``LABUTILS_TORCH_THREADS`` is not a positive integer.
    """
    import torch

    raw = os.environ.get("LABUTILS_TORCH_THREADS", "").strip()
    if raw:
        try:
            threads = int(raw)
        except ValueError:
            raise ValueError(f"LABUTILS_TORCH_THREADS={raw!r} is not an integer") from None
        source = "LABUTILS_TORCH_THREADS"
    else:
        threads, source = default, "default"
    if threads is None:
        return torch.get_num_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"{source} must be a positive integer, got {threads!r}")
    torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def torch_device(prefer: str | None = None):
    """Return the ``torch.device`` to train on: CUDA, then Apple MPS, then CPU.

    Parameters
    ----------
    prefer : str, optional
        Force a device (``"cpu"``, ``"cuda"``, ``"mps"``).
    """
    import torch

    if prefer is not None:
        if prefer not in ("cpu", "cuda", "mps"):
            raise ValueError(f"prefer={prefer!r}; use 'cpu', 'cuda' or 'mps'")
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
    except Exception as error:  # a broken install should still be reported, not crash
        return f"not importable ({type(error).__name__})"
    return getattr(module, "__version__", "unknown")


def environment_report(*, include_tensorflow: bool = True) -> dict:
    """Print and return the versions, devices and course settings in use.

    Parameters
    ----------
    include_tensorflow : bool, default True
        Import TensorFlow to report its version and devices (takes a few seconds).

    Returns
    -------
    dict
        ``{"python": ..., "packages": {...}, "torch_device": ..., ...}``.
    """
    import torch

    packages = {name: _version(name) for name in ("numpy", "scipy", "sklearn", "matplotlib", "torch", "torchvision")}
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_device": str(torch_device()),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "profile": profile(),
        "seed": default_seed(),
    }
    if include_tensorflow:
        packages["tensorflow"] = _version("tensorflow")
        packages["keras"] = _version("keras")
        try:
            import tensorflow as tf

            report["tensorflow_gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
            import keras

            report["keras_backend"] = keras.backend.backend()
        except ImportError:
            report["tensorflow_gpus"] = None
    report["packages"] = packages
    width = max(len(key) for key in report)
    for key, value in report.items():
        if key == "packages":
            for name, version in value.items():
                print(f"{name:>{width}} : {version}")
        else:
            print(f"{key:>{width}} : {value}")
    return report
