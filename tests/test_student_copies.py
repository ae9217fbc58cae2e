"""Student copies: valid notebooks, no solution code, and unsolved checks fail kindly."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from notebook_helpers import NOTEBOOK_DIR, NOTEBOOKS, exercise_cells, read, tags

from labutils.student import BEGIN, END, strip_solution, student_notebook, write_student_copies

IDS = [path.name[:2] for path in NOTEBOOKS]


def test_strip_solution_keeps_stubs_and_context():
    source = "\n".join(
        [
            "# compute the z-scores",
            BEGIN,
            "# stub: z = None",
            "z = (x - x.mean()) / x.std()",
            END,
            "print(z)",
        ]
    )
    stripped = strip_solution(source)
    assert "z = None" in stripped and "x.mean()" not in stripped
    assert stripped.startswith("# compute the z-scores") and stripped.endswith("print(z)")
    assert "raise NotImplementedError" in strip_solution(f"{BEGIN}\nanswer = 42\n{END}")
    with pytest.raises(ValueError, match="without"):
        strip_solution(f"{BEGIN}\nanswer = 1")
    with pytest.raises(ValueError, match="without"):
        strip_solution(f"answer = 1\n{END}")


def test_make_student_writes_one_copy_per_notebook(tmp_path):
    written = write_student_copies(NOTEBOOK_DIR, tmp_path / "student")
    assert [path.name for path in written] == [path.name for path in NOTEBOOKS]


def _solution_lines(cell) -> list:
    lines, inside = [], False
    for line in cell.source.splitlines():
        if line.strip().startswith(BEGIN):
            inside = True
        elif line.strip().startswith(END):
            inside = False
        elif inside and line.strip() and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_copy_is_valid_and_has_no_solution_code(path):
    original = read(path)
    copy = student_notebook(original)
    nbformat.validate(copy)
    for before, after in zip(original.cells, copy.cells):
        if "solution" not in tags(before):
            assert before.source == after.source
            continue
        assert BEGIN not in after.source and not after.outputs
        kept = set(line.strip() for line in after.source.splitlines())
        leaked = [line for line in _solution_lines(before) if line in kept]
        assert not leaked, f"solution code leaked into the student copy: {leaked}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_check_fails_kindly_when_unsolved(path):
    """Run the setup cell and the exercises (unsolved) up to the first check cell."""
    copy = student_notebook(read(path))
    cells = [copy.cells[1]]
    for cell in exercise_cells(copy):
        if cell.cell_type == "code":
            cells.append(cell)
            if "check" in tags(cell):
                break
    trimmed = nbformat.v4.new_notebook(cells=cells, metadata=copy.metadata)
    client = NotebookClient(
        trimmed, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    with pytest.raises(CellExecutionError) as error:
        client.execute()
    assert error.value.ename == "CheckFailed", f"expected CheckFailed, got {error.value.ename}: {error.value.evalue}"
    assert "write your solution" in error.value.evalue
