"""The example notebooks in ``notebooks/``: they run top to bottom, and are committed clean.

Each notebook is executed in memory (nothing is written back) by a fresh ``python3``
kernel of the running environment, with ``CLVBAYES_FAST=1`` (short chains: about a minute
per notebook once the Numba caches are warm) and the non-interactive ``Agg`` backend, in
``notebooks/`` as working directory. A failing cell fails the test with that cell's
traceback. The committed files must be valid nbformat 4 with no outputs and no execution
counts, so that no stale results are ever shown next to the code.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {
    "01_quickstart_cdnow.ipynb",
    "02_holdout_validation.ipynb",
    "03_customer_equity_churn.ipynb",
    "04_scaling_to_millions.ipynb",
    "05_model_comparison.ipynb",
    "06_covariates_and_segments.ipynb",
}
# Generous per cell: a cold Numba cache compiles the CLV kernels (about a minute) and nutpie
# compiles each model's sampler once per kernel process.
CELL_TIMEOUT = 900
FAST_LINE = 'FAST = os.environ.get("CLVBAYES_FAST", "0") == "1"'
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # IPython colours its tracebacks


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _snapshot() -> set[str]:
    """Files a notebook could write by accident: anything under notebooks/ and the
    repository's top-level entries."""
    under = {
        str(p.relative_to(ROOT))
        for p in NOTEBOOK_DIR.rglob("*")
        if not any(part in {"__pycache__", ".ipynb_checkpoints"} for part in p.parts)
    }
    return under | {p.name for p in ROOT.iterdir()}


def test_the_notebooks_are_there() -> None:
    assert {p.name for p in NOTEBOOKS} == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert nb.nbformat == 4
    nbformat.validate(nb)  # raises ValidationError with the offending field
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells, "a notebook without code"
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None or "execution" in c.metadata)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs, execution counts or execution metadata; "
        "clear them before committing (e.g. jupyter nbconvert --clear-output --inplace)."
    )
    # The fast switch comes first, so every later setting can depend on it.
    assert FAST_LINE in code_cells[0].source, f"{path.name}: the first code cell must define {FAST_LINE!r}"


# ~40 s per notebook (two NUTS fits each): slow, so the default suite stays a few minutes;
# .ci/run runs the slow tests (and the docs build executes the notebooks once more).
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch, record_property) -> None:
    # The kernel inherits this process's environment.
    monkeypatch.setenv("CLVBAYES_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    before = _snapshot()
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        failing = [
            i
            for i, c in enumerate(nb.cells)
            if any(o.get("output_type") == "error" for o in c.get("outputs", []))
        ]
        message = ANSI.sub("", str(exc))
        pytest.fail(f"{path.name}: cell {failing[0] if failing else '?'} raised:\n{message}", pytrace=False)
    seconds = time.perf_counter() - start
    record_property("seconds", round(seconds, 1))
    print(f"{path.name}: {seconds:.1f} s")

    errors = [
        (i, o.get("ename"))
        for i, c in enumerate(nb.cells)
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    written = sorted(_snapshot() - before)
    assert not written, f"{path.name} wrote files into the repository: {written}"
