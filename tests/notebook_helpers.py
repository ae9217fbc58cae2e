"""Helpers shared by the notebook tests."""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def read(path: Path):
    return nbformat.read(path, as_version=4)


def tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def heading_index(notebook, heading: str) -> int | None:
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and cell.source.strip().splitlines()[:1] == [heading]:
            return index
    return None


def exercise_cells(notebook) -> list:
    start = heading_index(notebook, "## Exercises")
    end = heading_index(notebook, "## References")
    return notebook.cells[start + 1 : end] if start is not None and end is not None else []
