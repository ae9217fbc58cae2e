"""labutils.site: the website's sources, alt text and link check (make site builds it in CI)."""

from __future__ import annotations

import json

import pytest

from labutils import site
from labutils.catalog import load_catalog


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return site.prepare_sources(tmp_path_factory.mktemp("site") / "src")


def test_every_notebook_gets_a_page_with_its_panel_downloads_and_alt_text(sources):
    entries = [entry for entry in load_catalog()["notebook"] if (site.NOTEBOOKS / entry["file"]).exists()]
    index = (sources / "index.md").read_text()
    for entry in entries:
        assert entry["file"][:-6] in index, f"{entry['file']} is not in the landing page's table of contents"
        page = json.loads((sources / entry["file"]).read_text())
        panel = "".join(page["cells"][1]["source"])
        assert "**Runtime.**" in panel and "student copy" in panel and "Claims checked" in panel
        assert (sources / "downloads" / entry["file"]).is_file()
        assert (sources / "downloads" / "student" / f"{entry['file'][:-6]}_student.ipynb").is_file()
        for cell in page["cells"]:
            if any("image/png" in output.get("data", {}) for output in cell.get("outputs", [])):
                assert cell["metadata"]["mystnb"]["image"]["alt"].startswith("Figure"), "a figure without alt text"
    for name in ("instructors.md", "claims.md", "changelog.md"):
        assert (sources / name).is_file()


def test_the_build_never_executes_and_needs_no_network(sources):
    conf = (sources / "conf.py").read_text()
    assert 'nb_execution_mode = "off"' in conf
    assert 'mathjax_path = "mathjax/tex-mml-chtml.js"' in conf
    assert (sources / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()


@pytest.mark.parametrize(
    "source, expected",
    [
        ('axis.set_title("CIFAR-10: the same labelled images")', "Figure: CIFAR-10: the same labelled images"),
        ('plot_history(history, title=f"seed {SEED}")', "Figure: seed …"),
        ("# Learning curves of both models\nplt.plot(x)", "Figure: Learning curves of both models"),
        ("plt.plot(x)", "Figure from the notebook Dropout"),
    ],
)
def test_alt_text_comes_from_titles_then_comments(source, expected):
    assert site.figure_alt_text(source, notebook_title="Dropout") == expected


def test_link_check_finds_missing_pages_and_anchors(tmp_path):
    (tmp_path / "a.html").write_text(
        '<h1 id="top">A</h1><a href="b.html#here">ok</a><a href="b.html#gone">x</a>'
        '<a href="c.html">x</a><a href="https://example.org/">ext</a><a href="#top">t</a>'
    )
    (tmp_path / "b.html").write_text('<section id="here"></section>')
    broken, external = site.check_links(tmp_path)
    assert sorted(broken) == ["a.html: b.html#gone (no such anchor)", "a.html: c.html (no such file)"]
    assert external == ["https://example.org/"]
