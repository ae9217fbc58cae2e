"""The catalog is the single source of the README's notebook table and agendas."""

from __future__ import annotations

from notebook_helpers import NOTEBOOKS, ROOT

from labutils import catalog


def test_catalog_numbers_are_unique_and_cover_every_notebook():
    entries = catalog.load_catalog()["notebook"]
    numbers = [entry["number"] for entry in entries]
    assert len(numbers) == len(set(numbers))
    files = {entry["file"] for entry in entries}
    missing = [path.name for path in NOTEBOOKS if path.name not in files]
    assert not missing, f"notebooks without a catalog entry: {missing}"
    for entry in entries:
        for key in ("title", "topics", "minutes_full", "prerequisites", "datasets", "gpu_helps", "stuck_points"):
            assert key in entry, f"{entry['file']} misses {key}"


def test_every_notebook_has_a_measured_fast_time():
    timings = catalog.load_timings().get("fast", {})
    unmeasured = [path.name for path in NOTEBOOKS if path.name not in timings]
    assert not unmeasured, f"run `make timings` for {unmeasured}"


def test_readme_is_rendered_from_the_catalog():
    text = (ROOT / "README.md").read_text()
    assert catalog.rendered_readme(text) == text, (
        "README.md is out of date with notebooks/catalog.toml: run `make readme`"
    )


def test_agendas_only_list_known_notebooks():
    parsed = catalog.load_catalog()
    known = {entry["number"] for entry in parsed["notebook"]}
    for agenda in parsed["agenda"]:
        for _, numbers in agenda["sessions"]:
            assert set(numbers) <= known
