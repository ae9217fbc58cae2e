"""pyproject.toml and environment.yml must describe the same environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$")


def _split(requirement: str) -> tuple[str, str]:
    name, spec = NAME.match(requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def pyproject_requirements() -> dict:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return dict(_split(r) for r in requirements)


def environment_requirements() -> dict:
    """Parse the dependency lists of environment.yml (a small, fixed layout)."""
    found = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        item = re.match(r"^\s+- (.+)$", line)
        if not item or item.group(1).rstrip(":") == "pip" or item.group(1).startswith("-e"):
            continue
        text = item.group(1).split("#")[0].strip()
        name, spec = _split(text.replace("=", "==", 1) if re.match(r"^[\w\-]+=[^=<>]", text) else text)
        found[name] = spec
    found.pop("python", None)
    return found


def test_same_packages_and_ranges():
    assert environment_requirements() == pyproject_requirements()


def test_versions_are_ranges_not_pins():
    for name, spec in pyproject_requirements().items():
        assert spec, f"{name} has no version range"
        assert "==" not in spec, f"{name} is pinned exactly: {spec}"


def test_environment_uses_python_311_and_installs_the_course():
    text = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in text and "- -e ." in text
