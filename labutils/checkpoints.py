"""Small, checksummed checkpoints of the models that notebooks start from.

Each checkpoint is a PyTorch ``state_dict`` in ``data/checkpoints/<name>.pt`` with an entry
in ``data/checkpoints/manifest.json`` recording how it was made: the file's sha256, the
exact command, the git commit, the hardware, the wall time and the metrics it reached.
Loading verifies the sha256 first, so a notebook never silently runs on a corrupt or
stale file.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

from .data import DataError, file_hash
from .files import atomic_save_torch, atomic_write

__all__ = ["checkpoint_dir", "manifest", "checkpoint_exists", "save_checkpoint", "load_checkpoint"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def checkpoint_dir() -> Path:
    """The folder holding checkpoints (``LABUTILS_CHECKPOINT_DIR`` or ``data/checkpoints``)."""
    return Path(os.environ.get("LABUTILS_CHECKPOINT_DIR") or PROJECT_ROOT / "data" / "checkpoints")


def manifest() -> dict:
    """Return the manifest: ``{name: {"file", "sha256", "command", ...}}``."""
    path = checkpoint_dir() / "manifest.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def checkpoint_exists(name: str) -> bool:
    """True when ``name`` is in the manifest and its file is present."""
    entry = manifest().get(name)
    return entry is not None and (checkpoint_dir() / entry["file"]).is_file()


def _hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def save_checkpoint(
    model, name: str, *, command: str, wall_time_s: float, metrics: dict, extra: dict | None = None
) -> dict:
    """Save ``model.state_dict()`` as checkpoint ``name`` and record it in the manifest.

    Returns
    -------
    dict
        The manifest entry.
    """
    import torch

    folder = checkpoint_dir()
    target = folder / f"{name}.pt"
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    atomic_save_torch(state, target)
    entry = {
        "file": target.name,
        "sha256": file_hash(target),
        "bytes": target.stat().st_size,
        "command": command,
        "commit": _commit(),
        "hardware": _hardware(),
        "torch": torch.__version__,
        "wall_time_s": round(float(wall_time_s), 1),
        "metrics": {key: round(float(value), 4) for key, value in metrics.items()},
        "created": time.strftime("%Y-%m-%d", time.gmtime()),
        **(extra or {}),
    }
    entries = manifest()
    entries[name] = entry
    text = json.dumps(dict(sorted(entries.items())), indent=2) + "\n"
    atomic_write(folder / "manifest.json", lambda temporary: temporary.write_text(text))
    return entry


def load_checkpoint(model, name: str, *, device="cpu"):
    """Load checkpoint ``name`` into ``model`` after verifying its sha256.

    Raises
    ------
    DataError
        If the checkpoint is unknown, missing, or its checksum does not match.
    """
    import torch

    entries = manifest()
    if name not in entries:
        raise DataError(
            f"no checkpoint named {name!r} in {checkpoint_dir() / 'manifest.json'}; "
            f"known: {sorted(entries)}. Create it with `python -m labutils.pretrain {name}`."
        )
    entry = entries[name]
    path = checkpoint_dir() / entry["file"]
    if not path.is_file():
        raise DataError(f"checkpoint file {path} is missing; recreate it with: {entry['command']}")
    actual = file_hash(path)
    if actual != entry["sha256"]:
        raise DataError(
            f"checksum mismatch for {path}: manifest says {entry['sha256']}, file has {actual}. "
            f"The file is corrupt or was replaced; restore it from git or recreate it with: "
            f"{entry['command']}"
        )
    model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    return model
