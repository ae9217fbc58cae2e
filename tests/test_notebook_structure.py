"""Every notebook follows the course skeleton (see notebooks/AUTHORING.md)."""

from __future__ import annotations

import re

import pytest
from notebook_helpers import NOTEBOOKS, exercise_cells, heading_index, read, tags

from labutils.catalog import load_catalog
from labutils.student import BEGIN, END

IDS = [path.name[:2] for path in NOTEBOOKS]


def test_there_are_notebooks_and_numbers_are_unique():
    assert NOTEBOOKS, "no notebooks found"
    numbers = [path.name[:2] for path in NOTEBOOKS]
    assert len(numbers) == len(set(numbers)), f"duplicate notebook numbers: {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_header(path):
    notebook = read(path)
    catalog = {entry["file"]: entry for entry in load_catalog()["notebook"]}
    assert path.name in catalog, f"{path.name} has no entry in notebooks/catalog.toml"
    header = notebook.cells[0]
    assert header.cell_type == "markdown"
    first_line = header.source.splitlines()[0]
    assert first_line == f"# {path.name[:2]} · {catalog[path.name]['title']}", (
        f"the first line should be '# {path.name[:2]} · <title from catalog.toml>', got {first_line!r}"
    )
    for part in ("**Objectives.**", "**Runtime.**", "**Prerequisites.**"):
        assert part in header.source, f"header misses {part}"
    runtime = header.source.split("**Runtime.**", 1)[1].split("\n\n", 1)[0]
    assert "fast" in runtime and "full" in runtime, "runtime must be given per profile"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_setup_cell(path):
    setup = read(path).cells[1]
    assert setup.cell_type == "code" and "setup" in tags(setup), "the second cell is the setup cell"
    assert "settings(" in setup.source, "the setup cell declares settings(fast=..., full=...)"
    assert "seed_everything(" in setup.source, "the setup cell seeds everything"
    source = setup.source
    if re.search(r"^\s*(import|from)\s+(keras|tensorflow)\b", source, re.M):
        first_tf = re.search(r"^\s*(import|from)\s+(keras|tensorflow)\b", source, re.M).start()
        first_torch = re.search(r"^\s*(import|from)\s+(labutils|torch)\b", source, re.M)
        assert first_torch and first_torch.start() < first_tf, (
            "import labutils or torch before keras/tensorflow (see labutils/__init__.py)"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_closing_sections_in_order(path):
    notebook = read(path)
    positions = [heading_index(notebook, heading) for heading in ("## Summary", "## Exercises", "## References")]
    assert None not in positions, f"missing one of Summary/Exercises/References: {positions}"
    assert positions == sorted(positions), "order must be Summary, Exercises, References"
    assert positions[2] == len(notebook.cells) - 1 or all(
        cell.cell_type == "markdown" for cell in notebook.cells[positions[2] :]
    ), "References comes last"
    sections = [
        cell
        for cell in notebook.cells[2 : positions[0]]
        if cell.cell_type == "markdown" and cell.source.startswith("## ")
    ]
    assert len(sections) >= 2, "the notebook needs sections between setup and summary"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_summary_is_followed_by_the_compute_time(path):
    notebook = read(path)
    assert "NOTEBOOK_START = time.perf_counter()" in notebook.cells[1].source, (
        "the setup cell starts the clock: NOTEBOOK_START = time.perf_counter()"
    )
    after_summary = notebook.cells[heading_index(notebook, "## Summary") + 1]
    assert after_summary.cell_type == "code" and "notebook compute time" in after_summary.source, (
        "the cell after ## Summary prints the notebook compute time"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_check_cells_import_nothing_and_ask_for_answers_first(path):
    for cell in exercise_cells(read(path)):
        if "check" not in tags(cell):
            continue
        assert not re.search(r"^\s*from\s+labutils\.check\s+import", cell.source, re.M), (
            "check cells use the check functions imported in the setup cell"
        )
        idiom = r"\bNone if (\w+) is None else\b|\b(\w+) if \2 is None else\b|\b\w+ is not None and\b"
        assert not re.search(idiom, cell.source), (
            "ask for a missing answer with check_defined/check_callable first, then check it plainly"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercises_have_hidden_solutions_and_checks(path):
    cells = exercise_cells(read(path))
    titles = [
        i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and cell.source.startswith("### Exercise")
    ]
    assert 2 <= len(titles) <= 4, f"expected 2 to 4 exercises, found {len(titles)}"
    for start, end in zip(titles, titles[1:] + [len(cells)]):
        block = cells[start:end]
        solutions = [cell for cell in block if "solution" in tags(cell)]
        checks = [cell for cell in block if "check" in tags(cell)]
        name = block[0].source.splitlines()[0]
        assert solutions, f"{name}: no solution cell (tag 'solution')"
        assert checks, f"{name}: no check cell (tag 'check')"
        for cell in solutions:
            assert BEGIN in cell.source and END in cell.source, f"{name}: solution markers missing"
            assert cell.metadata.get("jupyter", {}).get("source_hidden"), (
                f"{name}: solution cells are collapsed (jupyter.source_hidden)"
            )
        assert any(re.search(r"\bcheck_(array|scalar|true|raises)\(", cell.source) for cell in checks), (
            f"{name}: the check cell calls labutils.check"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_lessons_are_claimed_and_no_star_imports(path):
    notebook = read(path)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert not any(re.search(r"^\s*from\s+\S+\s+import\s+\*", source, re.M) for source in code)
    sections = notebook.cells[2 : heading_index(notebook, "## Summary")]
    lessons = [cell.source for cell in sections if cell.cell_type == "code"]
    claims = sum(len(re.findall(r"^\s*claim\(", source, re.M)) for source in lessons)
    checks = claims + sum(len(re.findall(r"^\s*assert\b", source, re.M)) for source in lessons)
    assert claims >= 1 and checks >= 3, f"{claims} claims, {checks} checks: every lesson ends in a claim"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_come_from_one_fresh_run(path):
    notebook = read(path)
    counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
    assert None not in counts, "some code cells were not executed: run `make execute`"
    assert counts == list(range(1, len(counts) + 1)), (
        "execution counts are not 1..n: re-execute the notebook top to bottom (`make execute`)"
    )
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, "the committed notebook holds an error output"
    measuring = [
        cell.source.splitlines()[0]
        for cell in notebook.cells
        if cell.cell_type == "code" and any("claim FAILS" in output.get("text", "") for output in cell.outputs)
    ]
    assert not measuring, f"outputs saved from a measuring run show a failing claim (cells {measuring}): re-execute"
    assert path.stat().st_size < 2_500_000, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_file_diffs_cleanly(path):
    """A kernelspec, and no per-run or editor metadata (make execute / make format strip it)."""
    import json

    from labutils.hygiene import notebook_problems

    problems = [problem for problem in notebook_problems(json.loads(path.read_text())) if "machine path" not in problem]
    assert problems == [], f"run: python -m labutils.hygiene {path}\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_headings_never_skip_a_level(path):
    """The rendered page's outline (and a screen reader's) needs headings in order."""
    level = 0
    for cell in read(path).cells:
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if line.startswith("```"):
                fenced = not fenced
            heading = re.match(r"^(#+) ", line)
            if heading and not fenced:
                assert len(heading.group(1)) <= level + 1, f"{line!r} follows a level-{level} heading"
                level = len(heading.group(1))
