"""The Jupyter companion notebooks: committed copies match the generator, are valid, and run top to bottom."""

from pathlib import Path

import pytest

from ptqlab.cli import jupyter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "labs" / "jupyter"


@pytest.mark.parametrize("name", sorted(jupyter.NOTEBOOKS))
def test_committed_notebook_is_the_generated_one(name):
    committed = (NOTEBOOK_DIR / name).read_text(encoding="utf-8")
    assert committed == jupyter.render(name), f"regenerate with: python -m ptqlab.cli.jupyter {NOTEBOOK_DIR}"


def test_write_all_and_unknown_name(tmp_path):
    paths = jupyter.write_all(tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(jupyter.NOTEBOOKS)
    with pytest.raises(ValueError, match="unknown notebook 'x.ipynb'"):
        jupyter.render("x.ipynb")


@pytest.mark.parametrize("name", sorted(jupyter.NOTEBOOKS))
def test_notebook_is_valid_and_runs(name, monkeypatch):
    nbformat = pytest.importorskip(
        "nbformat", reason="install the jupyter extra: pip install -e '.[jupyter]'"
    )
    nbclient = pytest.importorskip(
        "nbclient", reason="install the jupyter extra: pip install -e '.[jupyter]'"
    )
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's ptqlab
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == 2  # the lab's widget and its live ipywidgets.Output
