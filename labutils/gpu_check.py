"""One short GPU run that turns the full profile's estimated times into measurements.

Usage::

    python -m labutils.gpu_check            # on a machine with a CUDA GPU (about 10 minutes)
    python -m labutils.gpu_check --smoke    # the same steps, tiny, on any CPU (the unit test)

Steps, each timed:

1. the ``cifar10_simclr`` recipe in the ``full`` profile (the GPU recipe: width 64, batch 512,
   40 epochs), saved to a temporary checkpoint folder so the committed CPU checkpoint is
   never replaced;
2. notebooks 08, 10 and 12 executed in the ``full`` profile (outputs discarded);
3. the measured seconds written to ``notebooks/timings.json`` under ``"gpu"``, with the
   device's name, so the notebooks' headers can quote measurements instead of estimates.

On a machine without TensorFlow, Keras 3 runs on its PyTorch backend (``KERAS_BACKEND=torch``).
``--smoke`` trains the recipe for two steps on the CPU, runs the notebooks given by
``--notebooks`` in the fast profile, and writes the timings to a temporary file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

from .files import atomic_write

__all__ = ["main", "run_check"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = PROJECT_ROOT / "notebooks"
DEFAULT_NOTEBOOKS = ("08_image_augmentation.ipynb", "10_transfer_learning.ipynb", "12_simclr.ipynb")


def _device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "CPU (smoke run)"


def _execute(path: Path, *, profile: str, timeout: int) -> float:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    environment = dict(os.environ, LABUTILS_PROFILE=profile)
    if importlib.util.find_spec("tensorflow") is None:
        environment.setdefault("KERAS_BACKEND", "torch")
    started = time.perf_counter()
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute(env=environment)
    return time.perf_counter() - started


def run_check(
    *, smoke: bool = False, notebooks: list | None = None, timings_path: Path | None = None, timeout: int = 900
) -> dict:
    """Run the steps above; return ``{"device": ..., "<step>": seconds, ...}``.

    Raises
    ------
    RuntimeError
        Without ``smoke``, if PyTorch sees no CUDA GPU.
    """
    import torch

    from .pretrain import run_recipe

    if not smoke and not torch.cuda.is_available():
        raise RuntimeError("make gpu-check needs a CUDA GPU; use --smoke to try the steps on a CPU")
    results: dict = {"device": _device_name(), "date": time.strftime("%Y-%m-%d", time.gmtime())}
    saved_folder = os.environ.get("LABUTILS_CHECKPOINT_DIR")
    with tempfile.TemporaryDirectory(prefix="labutils-gpu-check-") as folder:
        os.environ["LABUTILS_CHECKPOINT_DIR"] = folder
        try:
            started = time.perf_counter()
            entry = run_recipe("cifar10_simclr", profile="full", smoke=smoke)
            results["cifar10_simclr (full recipe)"] = round(time.perf_counter() - started, 1)
            results["cifar10_simclr metrics"] = entry["metrics"]
        finally:
            if saved_folder is None:
                os.environ.pop("LABUTILS_CHECKPOINT_DIR", None)
            else:
                os.environ["LABUTILS_CHECKPOINT_DIR"] = saved_folder
        print(
            f"cifar10_simclr, full recipe: {results['cifar10_simclr (full recipe)']} s, {entry['metrics']}", flush=True
        )
    for name in notebooks or DEFAULT_NOTEBOOKS:
        path = Path(name) if Path(name).is_file() else NOTEBOOKS / name
        seconds = _execute(path, profile="fast" if smoke else "full", timeout=timeout)
        results[path.name] = round(seconds, 1)
        print(f"{path.name}: {seconds:.1f} s", flush=True)
    timings_path = Path(
        timings_path
        or (Path(tempfile.gettempdir()) / "gpu-check-timings.json" if smoke else NOTEBOOKS / "timings.json")
    )
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    timings["gpu"] = results
    atomic_write(
        timings_path, lambda temporary: temporary.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    )
    print(f"timings written to {timings_path}")
    return results


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labutils.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny steps on a CPU")
    parser.add_argument("--notebooks", nargs="*", default=None, help="default: 08, 10 and 12")
    parser.add_argument("--timings", type=Path, default=None, help="where to write the timings")
    args = parser.parse_args(argv)
    run_check(smoke=args.smoke, notebooks=args.notebooks, timings_path=args.timings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
