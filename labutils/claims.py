"""Claims: the lessons a notebook asserts, checked against thresholds calibrated over seeds.

A notebook states each lesson it measures as one named claim::

    claim("dropout lowers the validation loss", loss_without - loss_with, above=0.02)

and compares two methods on paired runs (same seeds, same data draws) with
:func:`paired_difference`, whose mean and standard error it prints and then claims::

    gain = paired_difference(probe_scores, supervised_scores)
    claim("SimCLR beats training from scratch", gain, above=0.05)

A failed claim raises ``AssertionError`` naming the claim, the value, the threshold and the
seed, so a failure in CI can be rerun with ``LABUTILS_SEED=<seed>``. When the environment
variable ``LABUTILS_CLAIMS_LOG`` names a file, every claim also appends one JSON line to it
(notebook, claim, value, threshold, margin, seed, profile, device, library versions).

The register ``notebooks/claims.json`` collects those records over many seeds; each claim's
threshold is calibrated so that ``z = (mean - threshold) / sd >= 3`` over at least
:data:`MIN_SEEDS` seeds and every seed passes (``sd = 0`` for a deterministic claim). The
command line fills it and renders its table into the README::

    python -m labutils.claims run --seeds 0-9 [--notebooks 12 13] [--jobs 2]
    python -m labutils.claims run --measure ...  # record failing claims instead of stopping
    python -m labutils.claims sync       # take the notebooks' (recalibrated) thresholds
    python -m labutils.claims table      # re-render the README block from claims.json
    python -m labutils.claims check      # the calibration rule, as the unit test applies it
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import default_seed, profile
from .files import atomic_write

__all__ = [
    "MIN_SEEDS",
    "MIN_Z",
    "PairedDifference",
    "claim",
    "claim_calls",
    "claims_in_notebooks",
    "load_register",
    "paired_difference",
    "register_problems",
    "render_table",
    "summarize",
    "sync_thresholds",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = PROJECT_ROOT / "notebooks"
REGISTER = NOTEBOOKS / "claims.json"
MIN_SEEDS = 8
MIN_Z = 3.0
MARKERS = ("<!-- claims:table:start -->", "<!-- claims:table:end -->")


# --------------------------------------------------------------------------- paired comparisons
@dataclass(frozen=True)
class PairedDifference:
    """The mean of paired differences ``a - b`` with its standard error and confidence interval.

    Attributes
    ----------
    mean : float
    standard_error : float
        ``sd / sqrt(count)``, with the sample standard deviation (``ddof=1``).
    low, high : float
        The two-sided ``confidence`` interval of the mean (Student's t, ``count - 1``
        degrees of freedom), the interval ``scipy.stats.ttest_rel`` reports.
    count : int
    confidence : float
    differences : tuple of float
    """

    mean: float
    standard_error: float
    low: float
    high: float
    count: int
    confidence: float
    differences: tuple = field(repr=False)

    def __str__(self) -> str:
        return (
            f"{self.mean:+.4f} ± {self.standard_error:.4f} (standard error; "
            f"{100 * self.confidence:.0f}% interval [{self.low:+.4f}, {self.high:+.4f}], "
            f"{self.count} pairs)"
        )


def paired_difference(a, b, *, confidence: float = 0.95) -> PairedDifference:
    """Compare two methods run on the same seeds and data draws.

    Parameters
    ----------
    a, b : array-like of float, shape (n,)
        ``a[i]`` and ``b[i]`` come from the same seed and data draw; ``n >= 2``.
    confidence : float in (0, 1), default 0.95

    Returns
    -------
    PairedDifference

    Raises
    ------
    ValueError
        If the shapes differ, fewer than two pairs are given, a value is not finite, or
        ``confidence`` is not in (0, 1).
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-d and of one length, got shapes {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a paired comparison needs at least 2 pairs, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    differences = a - b
    count = len(differences)
    mean = float(differences.mean())
    standard_error = float(differences.std(ddof=1) / math.sqrt(count))
    half_width = float(stats.t.ppf(0.5 + confidence / 2, df=count - 1)) * standard_error
    return PairedDifference(
        mean=mean,
        standard_error=standard_error,
        low=mean - half_width,
        high=mean + half_width,
        count=count,
        confidence=confidence,
        differences=tuple(float(value) for value in differences),
    )


# --------------------------------------------------------------------------- the claim
def _versions() -> dict:
    versions = {}
    for name in ("numpy", "torch", "tensorflow", "keras", "sklearn"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "unknown")
    return versions


def _device() -> str:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def claim(name: str, value, *, above: float | None = None, below: float | None = None) -> None:
    """Check one lesson: ``value > above`` or ``value < below``; print and log the result.

    Parameters
    ----------
    name : str
        What the lesson says, in a few words; unique within the course (the register's key).
    value : float or PairedDifference
        The measured number (for a :class:`PairedDifference`, its mean, and the printed line
        shows its standard error and interval).
    above, below : float
        The threshold; give exactly one.

    Returns
    -------
    None
        Nothing, so that a claim on a cell's last line shows no output: the printed line gives
        the margin (``value - above`` or ``below - value``) and the log records it.

    Raises
    ------
    AssertionError
        If the claim does not hold; the message names the claim, value, threshold and seed.
    ValueError
        If not exactly one of ``above`` and ``below`` is given, the name is empty, or the
        value is not a finite number.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a claim needs a name")
    if (above is None) == (below is None):
        raise ValueError(f"claim {name!r}: give exactly one of above= or below=")
    detail = str(value) if isinstance(value, PairedDifference) else None
    number = value.mean if isinstance(value, PairedDifference) else value
    try:
        number = float(number)
    except (TypeError, ValueError):
        raise ValueError(f"claim {name!r}: value must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"claim {name!r}: value is {number}")
    threshold = above if above is not None else below
    direction = "above" if above is not None else "below"
    margin = number - threshold if above is not None else threshold - number
    seed = default_seed()
    _log(name=name, value=number, threshold=float(threshold), direction=direction, margin=margin, seed=seed)
    relation = ">" if above is not None else "<"
    shown = detail or f"{number:.4g}"
    if margin <= 0 and os.environ.get("LABUTILS_CLAIMS_MEASURE", "").strip() == "1":
        print(f"claim FAILS (measuring only, not raised): {name}: {number:.4g} {relation} {threshold:g}")
        return None
    if margin <= 0:
        raise AssertionError(
            f"claim failed: {name!r}: measured {shown}, expected {relation} {threshold:g} "
            f"(margin {margin:+.4g}; LABUTILS_SEED={seed}, profile {profile()})"
        )
    print(f"claim holds: {name}: {shown} {relation} {threshold:g} (margin {margin:+.4g})")
    return None


def _log(**record) -> None:
    path = os.environ.get("LABUTILS_CLAIMS_LOG", "").strip()
    if not path:
        return
    record.update(
        notebook=os.environ.get("LABUTILS_NOTEBOOK", "unknown"),
        profile=profile(),
        device=_device(),
        versions=_versions(),
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    with open(path, "a") as stream:
        stream.write(json.dumps(record) + "\n")


# --------------------------------------------------------------------------- the register
def load_register(path: Path | None = None) -> dict:
    """Return ``{"claims": {name: {"notebook", "direction", "threshold", "values": {seed: v}}}}``."""
    path = Path(path or REGISTER)
    if not path.is_file():
        return {"claims": {}}
    return json.loads(path.read_text())


def summarize(entry: dict) -> dict:
    """Statistics of one claim over its seeds: count, mean, sd, min, max, worst margin, z.

    ``z = (mean - threshold) / sd`` for an ``above`` claim (``(threshold - mean) / sd`` for
    ``below``); infinite when every seed gives the same value (a deterministic claim).
    """
    values = np.array([float(value) for value in entry["values"].values()])
    sign = 1.0 if entry["direction"] == "above" else -1.0
    margins = sign * (values - entry["threshold"])
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    mean_margin = float(margins.mean()) if len(values) else float("nan")
    if sd > 1e-12:
        z = mean_margin / sd
    else:
        z = math.inf if mean_margin > 0 else -math.inf
    return {
        "seeds": len(values),
        "mean": float(values.mean()) if len(values) else float("nan"),
        "sd": sd,
        "min": float(values.min()) if len(values) else float("nan"),
        "max": float(values.max()) if len(values) else float("nan"),
        "worst_margin": float(margins.min()) if len(values) else float("nan"),
        "worst_seed": (list(entry["values"])[int(margins.argmin())] if len(values) else None),
        "z": z,
    }


def claim_calls(folder: Path | None = None) -> dict:
    """Every ``claim("...", ...)`` call in the notebooks, read from their source.

    Returns
    -------
    dict
        ``{claim name: {"notebook": file name, "direction": "above" or "below",
        "threshold": float, or None when it is not a literal number}}``.

    Raises
    ------
    ValueError
        If a claim's name is not a string literal, or two calls share a name.
    """
    found: dict = {}
    for path in sorted(Path(folder or NOTEBOOKS).glob("[0-9][0-9]_*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            if "claim(" not in source:
                continue
            # IPython magics (%...) and shell lines (!...) are not Python; a line continuing with != is
            lines = [line for line in source.splitlines() if not re.match(r"\s*(%|!(?!=))", line)]
            for node in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "claim":
                    if not (
                        node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                    ):
                        raise ValueError(f"{path.name}: a claim's name must be a string literal")
                    name = node.args[0].value
                    if name in found:
                        raise ValueError(f"claim {name!r} is made twice ({found[name]['notebook']}, {path.name})")
                    direction, threshold = None, None
                    for keyword in node.keywords:
                        if keyword.arg in ("above", "below"):
                            direction = keyword.arg
                            try:
                                threshold = float(ast.literal_eval(keyword.value))
                            except (ValueError, TypeError, SyntaxError):
                                threshold = None
                    found[name] = {"notebook": path.name, "direction": direction, "threshold": threshold}
    return found


def claims_in_notebooks(folder: Path | None = None) -> dict:
    """``{claim name: notebook file}`` for every ``claim("...", ...)`` call in the notebooks."""
    return {name: call["notebook"] for name, call in claim_calls(folder).items()}


def sync_thresholds(register: dict | None = None, *, calls: dict | None = None) -> dict:
    """Copy each claim's literal threshold and direction from the notebooks into the register.

    A measured value does not depend on the threshold it is checked against, so after
    recalibrating a threshold in a notebook the recorded seeds stay valid: this updates the
    register instead of rerunning them.
    """
    register = register if register is not None else load_register()
    calls = calls if calls is not None else claim_calls()
    for name, entry in register.get("claims", {}).items():
        call = calls.get(name)
        if call and call["threshold"] is not None:
            entry["threshold"], entry["direction"] = call["threshold"], call["direction"]
    return register


def register_problems(register: dict | None = None, *, notebooks: dict | None = None) -> list:
    """Every way the register breaks the calibration rule; an empty list when it holds.

    The rule: every claim a notebook makes is in the register, and only those; each has at
    least :data:`MIN_SEEDS` seeds, all passing, and ``z >= MIN_Z``.
    """
    register = register if register is not None else load_register()
    calls = claim_calls() if notebooks is None else None
    notebooks = notebooks if notebooks is not None else {name: call["notebook"] for name, call in calls.items()}
    recorded = register.get("claims", {})
    problems = [
        f"{name!r} ({file}) is not in claims.json: run python -m labutils.claims run"
        for name, file in notebooks.items()
        if name not in recorded
    ]
    problems += [f"{name!r} is in claims.json but no notebook makes it" for name in recorded if name not in notebooks]
    for name, entry in recorded.items():
        if name not in notebooks:
            continue
        if entry.get("notebook") != notebooks[name]:
            problems.append(f"{name!r}: recorded for {entry.get('notebook')}, made in {notebooks[name]}")
        call = (calls or {}).get(name)
        recorded_threshold = (entry.get("threshold"), entry.get("direction"))
        if call and call["threshold"] is not None and (call["threshold"], call["direction"]) != recorded_threshold:
            problems.append(
                f"{name!r}: {call['direction']} {call['threshold']:g} in {call['notebook']}, "
                f"{entry.get('direction')} {entry.get('threshold')} in claims.json: run python -m labutils.claims sync"
            )
        stats = summarize(entry)
        if stats["seeds"] < MIN_SEEDS:
            problems.append(f"{name!r}: {stats['seeds']} seeds recorded, at least {MIN_SEEDS} needed")
        elif stats["worst_margin"] <= 0:
            problems.append(f"{name!r}: fails at seed {stats['worst_seed']} (margin {stats['worst_margin']:+.4g})")
        elif stats["z"] < MIN_Z:
            problems.append(
                f"{name!r}: z = {stats['z']:.2f} < {MIN_Z}; calibrate the threshold or strengthen the experiment"
            )
    return problems


def _format(number: float) -> str:
    if math.isinf(number):
        return "∞ (deterministic)" if number > 0 else "-∞"
    return f"{number:.3g}"


def render_table(register: dict | None = None) -> str:
    """The register as a Markdown table, one row per claim, sorted by notebook."""
    register = register if register is not None else load_register()
    rows = [
        "| notebook | claim | threshold | seeds | mean | sd | min | max | worst margin | z |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    entries = sorted(register.get("claims", {}).items(), key=lambda item: (item[1]["notebook"], item[0]))
    for name, entry in entries:
        stats = summarize(entry)
        relation = ">" if entry["direction"] == "above" else "<"
        rows.append(
            f"| {entry['notebook'][:2]} | {name} | {relation} {entry['threshold']:g} | "
            f"{stats['seeds']} | {_format(stats['mean'])} | {_format(stats['sd'])} | "
            f"{_format(stats['min'])} | {_format(stats['max'])} | "
            f"{_format(stats['worst_margin'])} | {_format(stats['z'])} |"
        )
    if len(rows) == 2:
        rows.append("| | (no claims recorded yet) | | | | | | | | |")
    return "\n".join(rows)


def rendered_readme(readme_text: str, register: dict | None = None) -> str:
    """The README text with its claims block re-rendered from the register."""
    start, end = MARKERS
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(readme_text):
        raise ValueError(f"README has no {start} ... {end} block")
    return pattern.sub(lambda _: f"{start}\n{render_table(register)}\n{end}", readme_text)


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(data, indent=1) + "\n"))


def merge_records(register: dict, records: list) -> dict:
    """Add log records (dicts with notebook, name, value, threshold, direction, seed) to the register.

    A claim's threshold and direction are those of its newest record; a seed run again
    replaces its old value. Values are kept when only the threshold changes (they do not
    depend on it); after changing an experiment, rerun every seed.
    """
    claims = register.setdefault("claims", {})
    for record in records:
        entry = claims.setdefault(record["name"], {"values": {}})
        entry.update(
            notebook=record["notebook"],
            threshold=record["threshold"],
            direction=record["direction"],
            profile=record["profile"],
        )
        entry["values"][str(record["seed"])] = round(record["value"], 6)
        entry["values"] = dict(sorted(entry["values"].items(), key=lambda item: int(item[0])))
    return register


def merge_registers(register: dict, other: dict) -> dict:
    """Add every claim and seed of ``other`` to ``register`` (``other`` wins where both have a seed)."""
    claims = register.setdefault("claims", {})
    for name, entry in other.get("claims", {}).items():
        target = claims.setdefault(name, {"values": {}})
        target.update({key: value for key, value in entry.items() if key != "values"})
        target["values"] = dict(sorted({**target["values"], **entry["values"]}.items(), key=lambda item: int(item[0])))
    return register


def _parse_seeds(text: str) -> list:
    seeds = []
    for part in text.split(","):
        if "-" in part:
            first, last = (int(value) for value in part.split("-"))
            seeds.extend(range(first, last + 1))
        elif part.strip():
            seeds.append(int(part))
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds {text!r}: give non-negative seeds like 0-9 or 0,3,5")
    return seeds


#: Environment variables that limit a process to one CPU thread (PyTorch, BLAS, TensorFlow).
ONE_THREAD = {
    "LABUTILS_TORCH_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
}


def run_notebook(
    path: Path,
    *,
    seed: int,
    log: Path,
    timeout: int = 1800,
    save: bool = False,
    measure: bool = False,
    one_thread: bool = False,
) -> float:
    """Execute one notebook (fast profile) at ``seed``; return its seconds.

    Its claims append to ``log``. With ``save`` the executed notebook (outputs, and the
    per-run metadata stripped) replaces the file, as ``make execute`` does; otherwise the
    outputs are discarded. With ``measure`` a failing claim is recorded and reported instead
    of stopping the notebook (``LABUTILS_CLAIMS_MEASURE=1``), so that one run measures every
    claim; use it to calibrate (saved outputs must not show a failing claim: a test checks
    that). With ``one_thread`` the kernel uses one CPU thread (:data:`ONE_THREAD`, unless the
    caller set those variables): several notebooks at once on a small machine are much faster
    that way than with every kernel spinning up a thread per core. Raises the notebook's error
    if a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    environment = dict(
        {**ONE_THREAD, **os.environ} if one_thread else os.environ,
        LABUTILS_SEED=str(seed),
        LABUTILS_PROFILE="fast",
        LABUTILS_CLAIMS_LOG=str(log),
        LABUTILS_NOTEBOOK=path.name,
        LABUTILS_CLAIMS_MEASURE="1" if measure else "0",
    )
    started = time.perf_counter()
    from .hygiene import KERNEL_ARGUMENTS

    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        extra_arguments=KERNEL_ARGUMENTS,
    )
    client.execute(env=environment)  # passed on to the kernel's process
    seconds = time.perf_counter() - started
    if save:
        from .hygiene import clean_notebook, write_notebook

        write_notebook(clean_notebook(nbformat.from_dict(notebook)), path)
    return seconds


def _run_task(
    path: Path, seed: int, folder: Path, save: bool = False, measure: bool = False, one_thread: bool = False
) -> tuple:
    """Run one notebook at one seed; return (path, seed, seconds, records, error or None)."""
    log = folder / f"{path.stem}-{seed}.jsonl"
    error = None
    started = time.perf_counter()
    try:
        run_notebook(path, seed=seed, log=log, save=save, measure=measure, one_thread=one_thread)
    except Exception as exception:  # a failing cell: keep the claims measured before it
        last_line = (str(exception).strip().splitlines() or [""])[-1]
        error = f"{type(exception).__name__}: {last_line}"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return path, seed, time.perf_counter() - started, records, error


def run(
    notebooks: list,
    seeds: list,
    *,
    jobs: int = 1,
    register_path: Path | None = None,
    save_outputs: bool = False,
    measure: bool = False,
) -> dict:
    """Execute each notebook at each seed and merge the claims they log into the register.

    The register is rewritten after every notebook run, so an interrupted run keeps what it
    measured; running more seeds later appends to it. ``jobs`` notebooks run at once, each
    in its own kernel (with one CPU thread each when ``jobs > 1``). With ``save_outputs``
    each notebook's run at the first seed is saved as its committed outputs; with
    ``measure`` failing claims are recorded, not raised (see :func:`run_notebook`). A run
    that fails is reported and the others go on.

    Returns
    -------
    dict
        The register, with ``"failures"``: one line per notebook run that failed.
    """
    register_path = Path(register_path or REGISTER)
    tasks = [(path, seed) for seed in seeds for path in notebooks]
    folder = Path(tempfile.mkdtemp(prefix="labutils-claims-"))
    started = time.perf_counter()
    failures = []
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [
            pool.submit(_run_task, path, seed, folder, save_outputs and seed == seeds[0], measure, jobs > 1)
            for path, seed in tasks
        ]
        for done, future in enumerate(as_completed(futures), start=1):
            path, seed, seconds, records, error = future.result()
            register = merge_records(load_register(register_path), records)
            _write_json(register_path, register)
            left = (time.perf_counter() - started) / done * (len(tasks) - done)
            failed = [record["name"] for record in records if record["margin"] <= 0]
            status = f"FAILED ({error})" if error else (f"{len(failed)} claims fail" if failed else "ok")
            print(
                f"[{done}/{len(tasks)}] {path.name} seed {seed}: {seconds:.0f} s, "
                f"{len(records)} claims, {status}; about {left / 60:.0f} min left",
                flush=True,
            )
            if error:
                failures.append(f"{path.name} seed {seed}: {error}")
    register = load_register(register_path)
    register["failures"] = failures
    return register


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labutils.claims", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="execute notebooks over seeds, fill claims.json")
    run_parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,4,7 (default 0-9)")
    run_parser.add_argument(
        "--notebooks", nargs="*", default=None, help="numbers or file names (default: every notebook)"
    )
    run_parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once")
    run_parser.add_argument(
        "--save-outputs",
        action="store_true",
        help="save each notebook's run at the first seed as its committed outputs",
    )
    run_parser.add_argument(
        "--register",
        default=None,
        help="register file to fill (default notebooks/claims.json; another file lets two runs go at once)",
    )
    run_parser.add_argument(
        "--measure",
        action="store_true",
        help="record failing claims instead of stopping at them (to calibrate thresholds)",
    )
    commands.add_parser("table", help="render the claims table into README.md")
    commands.add_parser("sync", help="copy the notebooks' thresholds into claims.json, then render the table")
    merge_parser = commands.add_parser("merge", help="add the claims of other register files to claims.json")
    merge_parser.add_argument("files", nargs="+")
    commands.add_parser("check", help="list claims that break the calibration rule")
    args = parser.parse_args(argv)
    if args.command == "run":
        every = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
        wanted = args.notebooks
        chosen = [path for path in every if not wanted or path.name in wanted or path.name[:2] in wanted]
        if not chosen:
            parser.error(f"no notebook matches {wanted}")
        result = run(
            chosen,
            _parse_seeds(args.seeds),
            jobs=args.jobs,
            register_path=args.register,
            save_outputs=args.save_outputs,
            measure=args.measure,
        )
        for failure in result["failures"]:
            print("failed:", failure)
        if args.register:
            print(f"claims recorded in {args.register}; add them with: python -m labutils.claims merge {args.register}")
            return 1 if result["failures"] else 0
        failed_runs = len(result["failures"])
        args.command = "table"
    else:
        failed_runs = 0
    if args.command == "merge":
        register = load_register()
        for other in args.files:
            merge_registers(register, load_register(Path(other)))
        _write_json(REGISTER, register)
        args.command = "table"
    if args.command == "sync":
        _write_json(REGISTER, sync_thresholds())
        args.command = "table"
    if args.command == "table":
        readme = PROJECT_ROOT / "README.md"
        text = readme.read_text()
        new = rendered_readme(text)
        if new != text:
            readme.write_text(new)
        print("README.md claims table " + ("updated" if new != text else "already up to date"))
        return 1 if failed_runs else 0  # a notebook run that failed fails `make claims`
    problems = register_problems()
    for problem in problems:
        print(problem)
    print("claims register: " + (f"{len(problems)} problems" if problems else "every claim calibrated"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
