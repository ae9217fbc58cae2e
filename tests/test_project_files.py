"""The files a contributor, an instructor or a packager looks for, and what they must say."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def read(name: str) -> str:
    path = ROOT / name
    assert path.is_file(), f"{name} is missing"
    return path.read_text()


def test_licenses_for_code_and_content():
    assert "MIT License" in read("LICENSE")
    content = read("LICENSE-CONTENT.md")
    assert "CC BY 4.0" in content and "creativecommons.org/licenses/by/4.0" in content
    assert "LICENSE" in read("README.md") and "LICENSE-CONTENT.md" in read("README.md")


def test_citation_file_has_the_required_fields():
    citation = read("CITATION.cff")
    for field in ("cff-version:", "message:", "title:", "authors:", "version:", "license: MIT"):
        assert field in citation, f"CITATION.cff lacks {field}"
    version = tomllib.loads(read("pyproject.toml"))["project"]["version"]
    assert f"version: {version}" in citation, "CITATION.cff and pyproject.toml disagree on the version"


def test_changelog_has_the_current_version():
    version = tomllib.loads(read("pyproject.toml"))["project"]["version"]
    assert re.search(rf"^## \[?{re.escape(version)}\]?", read("CHANGELOG.md"), re.M), (
        f"CHANGELOG.md has no section for version {version}"
    )


def test_contributing_covers_notebooks_claims_datasets_and_recipes():
    text = read("CONTRIBUTING.md")
    for heading in (
        "## Add a notebook",
        "## State a lesson as a claim",
        "## Add a dataset",
        "## Add a pretraining recipe",
    ):
        assert heading in text


def test_issue_template_asks_for_what_reproduces_a_failure():
    text = read(".github/ISSUE_TEMPLATE/claim-failed-or-bug.md").lower()
    for asked in ("seed", "profile", "device", "00_setup"):
        assert asked in text, f"the issue template should ask for the {asked}"


def test_lock_file_pins_every_dependency_within_the_ranges():
    from packaging.requirements import Requirement

    pins = {}
    for line in read("requirements.lock").splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins.setdefault(match.group(1).lower().replace("_", "-"), []).append(match.group(2))
    project = tomllib.loads(read("pyproject.toml"))["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for text in requirements:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in requirements.lock: run make lock"
        for version in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements.lock pins {name}=={version}, outside {requirement.specifier}"
            )


def test_makefile_installs_from_the_lock_and_checks_the_python_version():
    makefile = read("Makefile")
    assert "-r requirements.lock" in makefile and "$(STAMP): pyproject.toml requirements.lock" in makefile
    assert "check-python" in makefile and "(3, 13)" in makefile
    project = tomllib.loads(read("pyproject.toml"))["project"]
    assert project["requires-python"] == ">=3.11,<3.14"


def test_ci_lints_before_the_long_run():
    run = read(".ci/run")
    assert run.index("make lint") < run.index("make test")


def test_pre_commit_runs_ruff_and_the_notebook_check():
    config = read(".pre-commit-config.yaml")
    assert "ruff-pre-commit" in config and "labutils.hygiene --check" in config


@pytest.mark.parametrize(
    "needed",
    [
        "FROM python:3.1",  # a Python TensorFlow has wheels for
        "pip install -r requirements.lock",  # the pinned environment
        "python -m labutils.data",  # the data cache prepared at build time
        "LABUTILS_OFFLINE=1",  # and used offline afterwards
        "EXPOSE 8888",
        'jupyter", "lab"',
    ],
)
def test_dockerfile_serves_a_workshop_room(needed):
    assert needed in read("Dockerfile")
    assert int(re.search(r"FROM python:3\.(\d+)", read("Dockerfile")).group(1)) in (11, 12, 13)


def test_readme_layout_names_every_top_level_folder_and_labutils_module():
    readme = read("README.md")
    layout = readme.split("## Layout", 1)[1].split("```", 2)[1]
    for folder in ("notebooks/", "labutils/", "experiments/", "tests/", "data/"):
        assert folder in layout
    modules = sorted(path.stem for path in (ROOT / "labutils").glob("*.py") if path.stem != "__init__")
    missing = [module for module in modules if not re.search(rf"\b{module}\b", layout)]
    assert missing == [], f"the README layout omits labutils modules {missing}"
