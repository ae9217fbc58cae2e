"""Generalization Lab's shared utilities.

Modules: ``config`` (profiles, settings, seeds, devices), ``data`` (datasets and cache),
``train`` (PyTorch training loop and callbacks), ``plot``, ``check`` (exercise checks),
``checkpoints``, ``pretrain`` (the recipes that make the checkpoints; ``python -m
labutils.pretrain``), ``simclr`` (SimCLR loss, encoders, views, linear probe and kNN),
``catalog`` (notebook metadata) and ``student`` (exercise copies); ``augment``, ``claims``,
``files``, ``hygiene``, ``preprocessing`` (scaling fitted on training data), ``site``,
``vision`` (CIFAR tensors, standardization, validation curves, calibration error) and
``gpu_check`` (see each module's docstring).

Warnings name their source file relative to the project or to the installed package
(``labutils/train.py:373``, ``keras/src/callbacks/...``), not by an absolute path, so that a
notebook's committed outputs never show the folders of the machine that ran it.

Importing ``labutils`` first loads PyTorch and, when installed, Triton (which CUDA builds of
PyTorch bring along). Loading them before TensorFlow matters: with TensorFlow already
loaded, importing Triton later (as ``torchvision`` and ``torch.use_deterministic_algorithms``
do) crashes the Python process with a segmentation fault (seen with torch 2.14 and
TensorFlow 2.21). So in a notebook, import ``labutils`` before ``keras``/``tensorflow``.
"""

import contextlib
import os as _os
import sys as _sys
import warnings as _warnings

_PROJECT = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
_plain_formatwarning = _warnings.formatwarning


def _relative_source(filename: str) -> str:
    """``/any/site-packages/keras/x.py`` -> ``keras/x.py``; project files relative to its root."""
    for marker in ("site-packages" + _os.sep, "dist-packages" + _os.sep):
        if marker in filename:
            return filename.rsplit(marker, 1)[1]
    if filename.startswith(_PROJECT + _os.sep):
        return _os.path.relpath(filename, _PROJECT)
    return filename


def _formatwarning(message, category, filename, lineno, line=None):
    if line is None:
        import linecache

        line = linecache.getline(filename, lineno)
    return _plain_formatwarning(message, category, _relative_source(filename), lineno, line)


_warnings.formatwarning = _formatwarning


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
