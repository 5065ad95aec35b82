"""The committed notebooks hold text for nbval, not images: every plot lives in the run folder and docs/img/."""

import nbformat

from neo_ml import paths
from neo_ml.workbook.notebooks import DOC_PLOTS, clean, notebook_paths


def test_committed_notebooks_hold_no_images_and_stay_small():
    notebooks = notebook_paths()
    assert len(notebooks) == 4
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                assert not any(kind.startswith("image/") for kind in output.get("data", {})), path.name
    assert sum(path.stat().st_size for path in notebooks) < 250_000


def test_clean_drops_images_and_keeps_text():
    cell = nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": "iVBOR", "text/plain": "<Figure size 640x480>"})])
    notebook = clean(nbformat.v4.new_notebook(cells=[cell]))
    assert notebook.cells[0].outputs[0]["data"] == {"text/plain": "<Figure size 640x480>"}


def test_the_readme_plots_are_committed():
    for name in DOC_PLOTS:
        assert (paths.PROJECT_ROOT / "docs" / "img" / name).stat().st_size > 1000
