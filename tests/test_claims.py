"""labutils.claims: the claim check, paired differences, and the register's calibration rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from labutils import claims
from labutils.claims import PairedDifference, claim, paired_difference


# --------------------------------------------------------------------------- claim
def test_claim_prints_the_margin_and_returns_nothing(capsys):
    assert claim("gain is positive", 0.3, above=0.1) is None
    assert claim("loss is small", 0.3, below=0.5) is None
    printed = capsys.readouterr().out
    assert "claim holds: gain is positive" in printed and "(margin +0.2)" in printed


@pytest.mark.parametrize("keywords", [dict(above=0.5), dict(below=0.1), dict(above=0.3)])
def test_failed_claim_names_value_threshold_and_seed(keywords, monkeypatch):
    monkeypatch.setenv("LABUTILS_SEED", "7")
    with pytest.raises(AssertionError) as failure:
        claim("gain is large", 0.3, **keywords)
    message = str(failure.value)
    assert "gain is large" in message and "0.3" in message and "LABUTILS_SEED=7" in message
    assert str(next(iter(keywords.values()))) in message


@pytest.mark.parametrize("bad", [dict(), dict(above=0.1, below=0.2)])
def test_claim_needs_exactly_one_threshold(bad):
    with pytest.raises(ValueError, match="exactly one"):
        claim("x", 1.0, **bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "high", None])
def test_claim_rejects_values_that_are_not_finite_numbers(value):
    with pytest.raises(ValueError):
        claim("x", value, above=0.0)


def test_claim_logs_a_json_record_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("LABUTILS_CLAIMS_LOG", str(log))
    monkeypatch.setenv("LABUTILS_NOTEBOOK", "99_test.ipynb")
    monkeypatch.setenv("LABUTILS_SEED", "3")
    claim("first", 2.0, above=1.0)
    with pytest.raises(AssertionError):
        claim("second", 2.0, below=1.0)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [record["name"] for record in records] == ["first", "second"]
    first = records[0]
    assert first["notebook"] == "99_test.ipynb" and first["seed"] == 3
    assert first["value"] == 2.0 and first["threshold"] == 1.0 and first["margin"] == 1.0
    assert first["direction"] == "above" and first["profile"] in ("fast", "full")
    assert "numpy" in first["versions"] and first["device"]
    assert records[1]["margin"] == -1.0  # failures are logged too


def test_claim_accepts_a_paired_difference_and_shows_its_error_bar(capsys):
    difference = paired_difference([0.5, 0.6, 0.7], [0.4, 0.4, 0.4])
    assert claim("a beats b", difference, above=0.1) is None  # a claim ending a cell shows no Out[]
    printed = capsys.readouterr().out
    assert "±" in printed and f"margin {difference.mean - 0.1:+.4g}" in printed


# --------------------------------------------------------------------------- paired_difference
def test_paired_difference_matches_scipy():
    generator = np.random.default_rng(0)
    a = generator.normal(0.6, 0.05, size=9)
    b = a - generator.normal(0.03, 0.02, size=9)
    result = paired_difference(a, b, confidence=0.9)
    reference = stats.ttest_rel(a, b)
    interval = reference.confidence_interval(confidence_level=0.9)
    assert result.mean == pytest.approx(np.mean(a - b))
    assert result.standard_error == pytest.approx(stats.sem(a - b))
    assert (result.low, result.high) == pytest.approx((interval.low, interval.high))
    assert result.count == 9 and len(result.differences) == 9


def test_pairing_is_what_makes_a_small_consistent_gain_visible():
    generator = np.random.default_rng(1)
    seed_effect = generator.normal(0, 0.1, size=10)  # shared by both arms of a pair
    a, b = 0.7 + seed_effect + 0.02, 0.7 + seed_effect
    paired = paired_difference(a, b)
    unpaired_se = math.sqrt(a.var(ddof=1) / 10 + b.var(ddof=1) / 10)
    assert paired.low > 0 and paired.standard_error < unpaired_se / 100


@pytest.mark.parametrize(
    "a, b", [([1.0], [0.0]), ([1.0, 2.0], [1.0]), ([[1.0, 2.0]], [[1.0, 2.0]]), ([1.0, float("nan")], [0.0, 0.0])]
)
def test_paired_difference_rejects_bad_input(a, b):
    with pytest.raises(ValueError):
        paired_difference(a, b)


def test_paired_difference_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([1, 2], [0, 0], confidence=1.5)


# --------------------------------------------------------------------------- the register
def entry(values, *, threshold=0.1, direction="above", notebook="01_x.ipynb"):
    return {
        "notebook": notebook,
        "threshold": threshold,
        "direction": direction,
        "values": {str(seed): value for seed, value in enumerate(values)},
    }


def test_summary_computes_z_margin_and_worst_seed():
    values = [0.5, 0.6, 0.4, 0.5, 0.55, 0.45, 0.5, 0.5]
    stats_ = claims.summarize(entry(values))
    assert stats_["seeds"] == 8 and stats_["mean"] == pytest.approx(0.5)
    assert stats_["z"] == pytest.approx(0.4 / np.std(values, ddof=1))
    assert stats_["worst_margin"] == pytest.approx(0.3) and stats_["worst_seed"] == "2"
    below = claims.summarize(entry(values, threshold=0.9, direction="below"))
    assert below["z"] == pytest.approx(0.4 / np.std(values, ddof=1))
    assert claims.summarize(entry([0.5] * 8))["z"] == math.inf  # deterministic


@pytest.mark.parametrize(
    "values, threshold, problem",
    [
        ([0.5] * 7, 0.1, "7 seeds"),
        ([0.5] * 7 + [0.05], 0.1, "fails at seed 7"),
        ([0.2, 0.3, 0.25, 0.35, 0.2, 0.3, 0.25, 0.3], 0.15, "z ="),
    ],
)
def test_register_rule_catches_thin_and_failing_claims(values, threshold, problem):
    register = {"claims": {"c": entry(values, threshold=threshold)}}
    problems = claims.register_problems(register, notebooks={"c": "01_x.ipynb"})
    assert len(problems) == 1 and problem in problems[0]


def test_register_rule_passes_a_calibrated_claim_and_checks_both_directions_of_sync():
    good = entry([0.5, 0.52, 0.48, 0.5, 0.51, 0.49, 0.5, 0.5])
    assert claims.register_problems({"claims": {"c": good}}, notebooks={"c": "01_x.ipynb"}) == []
    missing = claims.register_problems({"claims": {}}, notebooks={"c": "01_x.ipynb"})
    extra = claims.register_problems({"claims": {"c": good}}, notebooks={})
    moved = claims.register_problems({"claims": {"c": good}}, notebooks={"c": "02_y.ipynb"})
    assert "not in claims.json" in missing[0] and "no notebook makes it" in extra[0]
    assert "recorded for 01_x.ipynb" in moved[0]


def test_merge_records_appends_seeds_and_keeps_values_when_only_the_threshold_changes():
    record = dict(name="c", notebook="01_x.ipynb", threshold=0.1, direction="above", profile="fast", value=0.5, seed=0)
    register = claims.merge_records({"claims": {}}, [record, dict(record, seed=1, value=0.6)])
    assert register["claims"]["c"]["values"] == {"0": 0.5, "1": 0.6}
    register = claims.merge_records(register, [dict(record, seed=1, value=0.7)])
    assert register["claims"]["c"]["values"] == {"0": 0.5, "1": 0.7}
    register = claims.merge_records(register, [dict(record, threshold=0.2, seed=2)])
    assert register["claims"]["c"]["values"] == {"0": 0.5, "1": 0.7, "2": 0.5}
    assert register["claims"]["c"]["threshold"] == 0.2


def test_a_threshold_changed_in_a_notebook_is_caught_and_synced(tmp_path, monkeypatch):
    cell = {"cell_type": "code", "metadata": {}, "source": 'claim("c", x, above=-0.25)\nclaim("d", y, below=limit)'}
    (tmp_path / "01_x.ipynb").write_text(json.dumps({"cells": [cell]}))
    calls = claims.claim_calls(tmp_path)
    assert calls["c"] == {"notebook": "01_x.ipynb", "direction": "above", "threshold": -0.25}
    assert calls["d"]["threshold"] is None and calls["d"]["direction"] == "below"
    register = {"claims": {"c": entry([0.5, 0.52, 0.48, 0.5, 0.51, 0.49, 0.5, 0.5], threshold=0.1)}}
    register["claims"]["c"]["notebook"] = "01_x.ipynb"
    monkeypatch.setattr(claims, "claim_calls", lambda folder=None: calls)
    problems = claims.register_problems(register)
    assert any("above -0.25 in 01_x.ipynb" in problem and "sync" in problem for problem in problems)
    synced = claims.sync_thresholds(register, calls=calls)
    assert synced["claims"]["c"]["threshold"] == -0.25
    assert not [problem for problem in claims.register_problems(synced) if "'c'" in problem]


def test_measuring_mode_records_a_failing_claim_instead_of_raising(tmp_path, monkeypatch, capsys):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("LABUTILS_CLAIMS_LOG", str(log))
    monkeypatch.setenv("LABUTILS_CLAIMS_MEASURE", "1")
    assert claim("too strong", 0.2, above=0.5) is None
    assert "claim FAILS" in capsys.readouterr().out
    assert json.loads(log.read_text())["margin"] == pytest.approx(-0.3)
    monkeypatch.setenv("LABUTILS_CLAIMS_MEASURE", "0")
    with pytest.raises(AssertionError):
        claim("too strong", 0.2, above=0.5)


def test_claims_are_found_in_notebooks_and_names_must_be_unique(tmp_path):
    def notebook(*sources):
        cells = [{"cell_type": "code", "source": source, "metadata": {}} for source in sources]
        return json.dumps({"cells": cells})

    (tmp_path / "01_a.ipynb").write_text(
        notebook('%matplotlib inline\n!ls\nclaim("one", x, above=0)', 'claim(\n    "two", (y\n    != 0), below=1)')
    )
    assert claims.claims_in_notebooks(tmp_path) == {"one": "01_a.ipynb", "two": "01_a.ipynb"}
    (tmp_path / "02_b.ipynb").write_text(notebook('claim("one", z, above=0)'))
    with pytest.raises(ValueError, match="twice"):
        claims.claims_in_notebooks(tmp_path)
    (tmp_path / "02_b.ipynb").write_text(notebook("claim(name, z, above=0)"))
    with pytest.raises(ValueError, match="string literal"):
        claims.claims_in_notebooks(tmp_path)


def test_table_renders_every_claim_and_readme_block():
    register = {"claims": {"c": entry([0.5] * 8)}}
    table = claims.render_table(register)
    assert "| 01 | c | > 0.1 | 8 |" in table and "deterministic" in table
    readme = f"intro\n{claims.MARKERS[0]}\nold\n{claims.MARKERS[1]}\nend"
    assert "| 01 | c |" in claims.rendered_readme(readme, register)
    with pytest.raises(ValueError):
        claims.rendered_readme("no markers", register)


def test_committed_register_is_calibrated_and_in_sync_with_the_notebooks():
    problems = claims.register_problems()
    assert problems == [], "\n".join(problems)


def test_readme_claims_table_is_rendered_from_the_register():
    readme = (claims.PROJECT_ROOT / "README.md").read_text()
    assert claims.rendered_readme(readme) == readme, "run: python -m labutils.claims table"


def test_seed_ranges_parse():
    assert claims._parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    with pytest.raises(ValueError):
        claims._parse_seeds("")


def test_paired_difference_str_is_readable():
    text = str(
        PairedDifference(mean=0.1, standard_error=0.01, low=0.08, high=0.12, count=8, confidence=0.95, differences=())
    )
    assert "+0.1000 ± 0.0100" in text and "95% interval" in text and "8 pairs" in text


def tiny_notebook(path, claims_source):
    """Write a one-cell notebook that seeds itself and then runs ``claims_source``."""
    import nbformat

    source = (
        "from labutils.claims import claim\nfrom labutils.config import seed_everything\n"
        "SEED = seed_everything()\n" + claims_source
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def test_runner_executes_notebooks_over_seeds_and_fills_the_register(tmp_path):
    path = tiny_notebook(tmp_path / "98_tiny.ipynb", "claim('seed plus one is positive', SEED + 1, above=0)")
    register_path = tmp_path / "claims.json"
    register = claims.run([path], [0, 3], jobs=2, register_path=register_path)
    entry = register["claims"]["seed plus one is positive"]
    assert entry["values"] == {"0": 1.0, "3": 4.0} and entry["notebook"] == "98_tiny.ipynb"
    assert json.loads(register_path.read_text())["claims"] == register["claims"]
    assert register["failures"] == []


def test_runner_reports_a_failing_run_and_goes_on(tmp_path):
    path = tiny_notebook(
        tmp_path / "97_fails.ipynb", "claim('the seed is below 2', SEED, below=2)\nclaim('after it', 1.0, above=0)"
    )
    register = claims.run([path], [0, 3], register_path=tmp_path / "claims.json")
    assert len(register["failures"]) == 1 and "seed 3" in register["failures"][0]
    assert register["claims"]["the seed is below 2"]["values"] == {"0": 0.0, "3": 3.0}
    assert register["claims"]["after it"]["values"] == {"0": 1.0}  # seed 3 stopped at the failure
    measured = claims.run([path], [3], register_path=tmp_path / "measured.json", measure=True)
    assert measured["failures"] == [] and measured["claims"]["after it"]["values"] == {"3": 1.0}


def test_registers_from_two_runs_merge_seed_by_seed():
    mine = {"claims": {"c": entry([0.5, 0.6])}}
    theirs = {"claims": {"c": {**entry([0.0]), "values": {"1": 0.7, "2": 0.8}}, "d": entry([1.0])}}
    merged = claims.merge_registers(mine, theirs)
    assert merged["claims"]["c"]["values"] == {"0": 0.5, "1": 0.7, "2": 0.8}
    assert merged["claims"]["d"]["values"] == {"0": 1.0}
