"""Every analyst notebook runs top to bottom on a small temporary database.

Each notebook is executed in a real Jupyter kernel (nbclient) with ``NEXTBEST_DATABASE_PATH``
pointing at a temporary file, a few hundred generated members and a non-interactive
matplotlib backend. The notebooks share one database (each seeds the pack when it is
missing), as an analyst's would. Notebooks are stored without outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # silence jupyter_core's path notice

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("notebooks")


def test_the_four_notebooks_exist() -> None:
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart", "02_batch_scoring", "03_experiment_analysis", "04_behavioral_metrics",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_DATABASE_PATH", str(workdir / "notebooks.duckdb"))
    monkeypatch.setenv("NEXTBEST_NOTEBOOK_CUSTOMERS", "400")
    monkeypatch.setenv("NEXTBEST_NOTEBOOK_OUT", str(workdir / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute()  # raises CellExecutionError naming the cell on any error
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
