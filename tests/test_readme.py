"""The README names only what exists: every module, function and command it mentions can be found."""

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
PACKAGES = "data|ncf|classification|bench|serving|checkpoints|errors|paths|distributed|pipeline|workbook|reporting|cli"
# Dotted names, written in full (neo_ml.data.pii.scrub) or from the package down (`data.db.redact_url`).
NAMES = sorted(set(re.findall(r"neo_ml\.([A-Za-z_][\w.]*\w)", README))
               | set(re.findall(rf"`((?:{PACKAGES})\.[A-Za-z_][\w.]*\w)", README)))
LOGGERS = {"predictions"}  # neo_ml.predictions is the name of a logger (serving.py), not a module
COMMANDS = sorted(set(re.findall(r"python -m (neo_ml(?:\.\w+)*)", README)))


def _resolve(dotted: str):
    """The module or attribute ``neo_ml.<dotted>`` names; ImportError or AttributeError when there is none."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module("neo_ml." + ".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    found = importlib.import_module("neo_ml")
    for attribute in parts:
        found = getattr(found, attribute)
    return found


@pytest.mark.parametrize("name", [n for n in NAMES if n not in LOGGERS])
def test_every_name_the_readme_gives_exists(name):
    assert _resolve(name) is not None


def test_the_logger_the_readme_names_is_the_one_that_logs():
    import neo_ml.serving

    assert neo_ml.serving.predictions_log.name == "neo_ml.predictions"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_the_readme_gives_is_a_runnable_module(command):
    module = importlib.import_module(command)
    if hasattr(module, "__path__"):  # a package runs its __main__.py
        assert importlib.util.find_spec(command + ".__main__"), f"{command} has no __main__.py"
        return
    assert callable(getattr(module, "main", None)), f"{command} has no main()"


def test_the_split_functions_the_readme_lists_exist():
    import neo_ml.data.splits as splits

    listed = re.search(r"`neo_ml\.data\.splits` provides (.*?)\.\n", README, re.S).group(1)
    names = re.findall(r"`(\w+)`", listed)
    assert len(names) >= 4 and all(hasattr(splits, name) for name in names), names


def test_every_image_the_readme_shows_is_committed():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert images and all((Path(__file__).resolve().parents[1] / image).is_file() for image in images)


def test_every_test_file_the_readme_names_exists():
    named = set(re.findall(r"`(tests/[\w/]+\.py)`", README))
    root = Path(__file__).resolve().parents[1]
    assert named and all((root / path).is_file() for path in named), sorted(named)
