"""Write exercise copies of the notebooks, without solutions (``make student``).

In a course notebook a solution cell is tagged ``solution`` and holds its answer between
``### BEGIN SOLUTION`` and ``### END SOLUTION``. Lines ``# stub: ...`` inside that block
become the student's starting code (usually ``answer = None``, which the check cell
reports kindly). Everything outside the block is kept. Outputs of solution cells are
removed and the cells are shown expanded. Check cells are kept as they are.

Usage::

    python -m labutils.student [--source notebooks] [--output student]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import nbformat

__all__ = ["BEGIN", "END", "strip_solution", "student_notebook", "write_student_copies"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = re.compile(r"^(\s*)# stub: ?(.*)$")
PLACEHOLDER = "# YOUR CODE HERE: replace the placeholder below with your solution."


def strip_solution(source: str) -> str:
    """Replace every BEGIN/END SOLUTION block of ``source`` by its stub lines.

    Raises
    ------
    ValueError
        If a block is opened and not closed (or closed and not opened).
    """
    lines, inside, stubs = [], False, []
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution block")
            inside, stubs = True, []
            indent = line[: len(line) - len(line.lstrip())]
            continue
        if stripped.startswith(END):
            if not inside:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            lines.append(f"{indent}{PLACEHOLDER}")
            lines.extend(stubs or [f"{indent}raise NotImplementedError('write your solution here')"])
            inside = False
            continue
        if inside:
            match = STUB.match(line)
            if match:
                stubs.append(f"{match.group(1)}{match.group(2)}")
            continue
        lines.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    return "\n".join(lines)


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def student_notebook(notebook):
    """Return a copy of ``notebook`` (an nbformat node) with its solutions removed."""
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        if cell.cell_type != "code" or "solution" not in _tags(cell):
            continue
        if BEGIN in cell.source:
            cell.source = strip_solution(cell.source)
        else:
            cell.source = f"{PLACEHOLDER}\nraise NotImplementedError('write your solution here')"
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.get("jupyter", {}).pop("source_hidden", None)
    copy.metadata.setdefault("labutils", {})["student_copy"] = True
    return copy


def write_student_copies(source: str | Path = "notebooks", output: str | Path = "student") -> list[Path]:
    """Write a student copy of every ``NN_*.ipynb`` in ``source`` into ``output``."""
    source, output = Path(source), Path(output)
    if not source.is_dir():
        raise ValueError(f"source folder {source} does not exist")
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        copy = student_notebook(notebook)
        nbformat.validate(copy)
        target = output / path.name
        nbformat.write(copy, target)
        written.append(target)
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="notebooks")
    parser.add_argument("--output", default="student")
    args = parser.parse_args(argv)
    for path in write_student_copies(args.source, args.output):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
