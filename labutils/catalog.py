"""The notebook catalog: one place for each notebook's metadata, rendered into the README.

``notebooks/catalog.toml`` describes every notebook (title, topics, prerequisites, datasets,
whether a GPU helps, where learners get stuck) and the workshop agendas.
``notebooks/timings.json`` holds measured wall times, written by ``make timings``.

Usage::

    python -m labutils.catalog readme     # re-render the README's generated sections
    python -m labutils.catalog timings    # execute every notebook, record wall times, save outputs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
import tomllib
from pathlib import Path

__all__ = ["load_catalog", "load_timings", "render_table", "render_agendas", "update_readme", "measure_timings"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = PROJECT_ROOT / "notebooks"
MARKERS = {
    "table": ("<!-- catalog:table:start -->", "<!-- catalog:table:end -->"),
    "agendas": ("<!-- catalog:agendas:start -->", "<!-- catalog:agendas:end -->"),
    "stuck": ("<!-- catalog:stuck:start -->", "<!-- catalog:stuck:end -->"),
}


def load_catalog(path: Path | None = None) -> dict:
    """Return the parsed catalog: ``{"notebook": [...], "agenda": [...]}``."""
    with open(path or NOTEBOOKS / "catalog.toml", "rb") as stream:
        catalog = tomllib.load(stream)
    for entry in catalog["notebook"]:
        entry["number"] = entry["file"][:2]
    return catalog


def load_timings(path: Path | None = None) -> dict:
    """Return ``{"fast": {file: seconds}, "hardware": str, ...}`` or an empty dict."""
    path = path or NOTEBOOKS / "timings.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _present(entry: dict) -> bool:
    return (NOTEBOOKS / entry["file"]).exists()


def _fast_minutes(entry: dict, timings: dict) -> str:
    seconds = timings.get("fast", {}).get(entry["file"])
    return "–" if seconds is None else f"{seconds / 60:.1f}"


def render_table(catalog: dict, timings: dict) -> str:
    """The README's notebook table (only notebooks present in ``notebooks/``)."""
    rows = [
        "| # | Notebook | Topics | Fast, 2-core CPU (min, measured) | Full, GPU (min, est.) | GPU helps |",
        "|---|---|---|---|---|---|",
    ]
    for entry in catalog["notebook"]:
        if not _present(entry):
            continue
        rows.append(
            f"| {entry['number']} | [{entry['title']}](notebooks/{entry['file']}) | {entry['topics']} "
            f"| {_fast_minutes(entry, timings)} | {entry['minutes_full']} "
            f"| {'yes' if entry['gpu_helps'] else 'no'} |"
        )
    planned = [entry for entry in catalog["notebook"] if not _present(entry)]
    if planned:
        rows.append("")
        rows.append(
            "Planned, not yet in the course: "
            + ", ".join(f"{entry['number']} {entry['title']}" for entry in planned)
            + "."
        )
    if timings.get("hardware"):
        rows.append("")
        rows.append(f"Fast-profile times measured by `make timings` on {timings['hardware']}.")
    return "\n".join(rows)


def render_agendas(catalog: dict, timings: dict) -> str:
    """The instructor's agendas, with the measured minutes of each notebook."""
    by_number = {entry["number"]: entry for entry in catalog["notebook"]}
    lines = []
    for agenda in catalog.get("agenda", []):
        lines.append(f"**{agenda['name']}**")
        lines.append("")
        for session, numbers in agenda["sessions"]:
            present = [by_number[n] for n in numbers if _present(by_number[n])]
            if not present:
                continue
            parts = [
                f"{entry['number']} {entry['title']} ({_fast_minutes(entry, timings)} min fast / "
                f"{entry['minutes_full']} min full)"
                for entry in present
            ]
            lines.append(f"- {session}: " + "; ".join(parts))
        lines.append("")
    return "\n".join(lines).rstrip()


def render_stuck_points(catalog: dict) -> str:
    """Where learners usually get stuck, per notebook."""
    return "\n".join(
        f"- **{entry['number']} {entry['title']}**: {entry['stuck_points']}"
        for entry in catalog["notebook"]
        if _present(entry)
    )


def _replace_block(text: str, key: str, body: str) -> str:
    start, end = MARKERS[key]
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README has no {start} ... {end} block")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)


def rendered_readme(readme_text: str) -> str:
    """Return the README text with every generated block re-rendered."""
    catalog, timings = load_catalog(), load_timings()
    text = _replace_block(readme_text, "table", render_table(catalog, timings))
    text = _replace_block(text, "agendas", render_agendas(catalog, timings))
    return _replace_block(text, "stuck", render_stuck_points(catalog))


def update_readme(path: Path | None = None) -> bool:
    """Re-render the README's generated blocks; return True if the file changed."""
    path = path or PROJECT_ROOT / "README.md"
    text = path.read_text()
    new = rendered_readme(text)
    if new != text:
        path.write_text(new)
    return new != text


def _hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {os.cpu_count()} cores"


def measure_timings(files: list[str] | None = None, *, timeout: int = 1800, save_outputs: bool = True) -> dict:
    """Execute notebooks (current profile) and record their wall times in timings.json.

    With ``save_outputs`` (the default) each executed notebook is written back, so one pass
    both measures the notebooks and refreshes their committed outputs (as ``make execute``).
    """
    import nbformat
    from nbclient import NotebookClient

    from .config import profile
    from .hygiene import KERNEL_ARGUMENTS, clean_notebook, write_notebook

    active = profile()
    timings = load_timings()
    timings.setdefault(active, {})
    paths = [NOTEBOOKS / name for name in files] if files else sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
            extra_arguments=KERNEL_ARGUMENTS,
        ).execute()
        seconds = time.perf_counter() - started
        if save_outputs:
            write_notebook(clean_notebook(notebook), path)
        timings[active][path.name] = round(seconds, 1)
        print(f"{path.name}: {seconds:.1f} s ({active} profile)")
    if active == "fast":
        timings["hardware"] = _hardware()
    (NOTEBOOKS / "timings.json").write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    return timings


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Notebook catalog tools")
    parser.add_argument("command", choices=["readme", "timings"])
    parser.add_argument("files", nargs="*", help="notebook file names (timings only)")
    args = parser.parse_args(argv)
    if args.command == "readme":
        changed = update_readme()
        print("README.md updated" if changed else "README.md already up to date")
    else:
        measure_timings(args.files or None)
        update_readme()


if __name__ == "__main__":
    main()
