"""Generalization Lab's shared utilities.

Modules: ``config`` (profiles, settings, seeds, devices), ``data`` (datasets and cache),
``train`` (PyTorch training loop and callbacks), ``plot``, ``check`` (exercise checks),
``checkpoints``, ``pretrain`` (the recipes that make the checkpoints; ``python -m
labutils.pretrain``), ``simclr`` (SimCLR loss, encoders, views, linear probe and kNN),
``catalog`` (notebook metadata) and ``student`` (exercise copies).

Importing ``labutils`` first loads PyTorch and, when installed, Triton (which CUDA builds of
PyTorch bring along). Loading them before TensorFlow matters: with TensorFlow already
loaded, importing Triton later (as ``torchvision`` and ``torch.use_deterministic_algorithms``
do) crashes the Python process with a segmentation fault (seen with torch 2.14 and
TensorFlow 2.21). So in a notebook, import ``labutils`` before ``keras``/``tensorflow``.
"""

import contextlib
import sys as _sys
import warnings as _warnings


def _load_torch_before_tensorflow() -> None:
    if "tensorflow" in _sys.modules and "triton" not in _sys.modules:
        _warnings.warn(
            "TensorFlow was imported before labutils/PyTorch. If torchvision or Triton is "
            "imported later, the process may crash (segmentation fault): restart the kernel "
            "and import labutils (or torch) before keras/tensorflow.",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    import torch  # noqa: F401

    with contextlib.suppress(ImportError):  # CPU-only builds of PyTorch do not ship Triton
        import triton  # noqa: F401


_load_torch_before_tensorflow()
