"""Notebook files that diff cleanly: one kernelspec, no run timestamps, no machine paths.

Committed outputs are part of the course (nbval checks them), so outputs stay; what goes is
what changes on every run without meaning anything: per-cell execution timestamps, editor
metadata (jupytext's, ``lines_to_next_cell``, ``ExecuteTime``), and absolute paths of the
machine that ran the notebook inside its outputs.

Usage::

    python -m labutils.hygiene notebooks/*.ipynb          # clean in place
    python -m labutils.hygiene --check notebooks/*.ipynb  # list problems, exit 1 if any
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

__all__ = ["KERNEL_ARGUMENTS", "KERNELSPEC", "clean_notebook", "notebook_problems", "write_notebook"]

#: Kernel options for runs whose outputs are committed: output that native libraries write
#: straight to the process's file descriptors (TensorFlow's C++ start-up lines, which no
#: environment variable silences in TensorFlow 2.21) goes to the terminal, not into cells.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CELL_KEYS_TO_DROP = ("execution", "lines_to_next_cell", "ExecuteTime", "collapsed", "scrolled")
NOTEBOOK_KEYS_TO_DROP = ("jupytext", "toc", "varInspector", "widgets")
#: absolute paths that identify a machine or a user (home folders, temporary and work folders)
MACHINE_PATH = re.compile(
    r"(?<![\w.])(/home/[^/\s'\"]+|/root|/Users/[^/\s'\"]+|/tmp|/work|"
    r"[A-Z]:\\\\Users\\\\[^\\\s'\"]+)(?=[/\\\s'\"]|$)"
)


def _output_texts(cell: dict):
    for output in cell.get("outputs", []):
        if "text" in output:
            yield "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
        for key, value in output.get("data", {}).items():
            if key.startswith("text/") and key != "text/html":
                yield "".join(value) if isinstance(value, list) else value
        if "traceback" in output:
            yield "\n".join(output["traceback"])


def notebook_problems(notebook: dict) -> list:
    """What keeps a notebook from diffing cleanly (an empty list when nothing does)."""
    problems = []
    if notebook.get("metadata", {}).get("kernelspec", {}).get("name") != KERNELSPEC["name"]:
        problems.append("no python3 kernelspec in the notebook metadata")
    for key in NOTEBOOK_KEYS_TO_DROP:
        if key in notebook.get("metadata", {}):
            problems.append(f"notebook metadata {key!r}")
    for index, cell in enumerate(notebook["cells"]):
        stale = [key for key in CELL_KEYS_TO_DROP if key in cell.get("metadata", {})]
        if stale:
            problems.append(f"cell {index}: metadata {stale}")
        for text in _output_texts(cell):
            match = MACHINE_PATH.search(text)
            if match:
                problems.append(f"cell {index}: output shows the machine path {match.group(0)!r}")
                break
    return problems


def clean_notebook(notebook: dict) -> dict:
    """Drop per-run and editor metadata and set the kernelspec, in place; return the notebook.

    Machine paths in outputs are not rewritten (that would falsify an output): a cell that
    prints one should print a path relative to the project instead.
    """
    metadata = notebook.setdefault("metadata", {})
    metadata["kernelspec"] = dict(KERNELSPEC)
    for key in NOTEBOOK_KEYS_TO_DROP:
        metadata.pop(key, None)
    for cell in notebook["cells"]:
        for key in CELL_KEYS_TO_DROP:
            cell.get("metadata", {}).pop(key, None)
    return notebook


def write_notebook(notebook: dict, path: Path) -> None:
    """Write ``notebook`` as Jupyter does (one-space indent, UTF-8, final newline)."""
    import nbformat

    from .files import atomic_write

    text = nbformat.writes(nbformat.from_dict(notebook)).rstrip("\n") + "\n"
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labutils.hygiene", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="only report; exit 1 on problems")
    args = parser.parse_args(argv)
    failed = False
    for path in args.paths:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if args.check:
            for problem in notebook_problems(notebook):
                print(f"{path}: {problem}")
                failed = True
        else:
            before = json.dumps(notebook, sort_keys=True)
            clean_notebook(notebook)
            if json.dumps(notebook, sort_keys=True) != before:
                write_notebook(notebook, path)
                print(f"cleaned {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
