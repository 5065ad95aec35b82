"""Real corpora, fetched once, cached under ``paths.data_dir()`` and checksum-verified.

MovieLens-100k comes from the ``recbole`` wheel on the package registry (read
with zipfile, never installed), or from GroupLens for users with the internet.
Both sources are normalised to the same frame and must give the same content
checksum, so a run can say exactly which data it saw. The data is under a
research licence: it is cached locally and never committed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from neo_ml import paths
from neo_ml.errors import DataUnavailableError

log = logging.getLogger(__name__)

RECBOLE_WHEEL = "recbole==1.2.1"
RECBOLE_ML100K = "recbole/dataset_example/ml-100k/"
GROUPLENS_ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
# sha256 of the normalised (user, item, rating, timestamp) table, sorted; see ratings_checksum.
ML100K_CHECKSUM = "50895172a83d02aa1c2ad9f923c474bbd4f06214a0e27364f01d5daf6a3f1fc5"
ML100K_SHAPE = (943, 1682, 100_000)


def ratings_checksum(ratings: pd.DataFrame) -> str:
    """Content checksum of a ratings table, independent of row order and source format."""
    table = ratings[["user_id", "item_id", "rating", "timestamp"]].astype(
        {"user_id": np.int64, "item_id": np.int64, "rating": np.float64, "timestamp": np.int64}
    ).sort_values(["user_id", "item_id", "timestamp"], kind="stable")
    text = table.to_csv(sep="\t", index=False, header=False, float_format="%.1f")
    return hashlib.sha256(text.encode()).hexdigest()


def _download_wheel(spec: str, folder: Path) -> Path:
    """Fetch one wheel with pip (no dependencies, nothing installed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "--disable-pip-version-check", "-d", str(folder), spec]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(folder.glob(f"{spec.split('==')[0].replace('-', '_')}-*.whl"))
    if result.returncode != 0 or not wheels:
        raise DataUnavailableError(f"pip download {spec} failed: {result.stderr.strip()[-500:]}")
    return wheels[-1]


def _ml100k_from_recbole() -> tuple[pd.DataFrame, pd.DataFrame]:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download_wheel(RECBOLE_WHEEL, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            inter = zf.read(RECBOLE_ML100K + "ml-100k.inter")
            item = zf.read(RECBOLE_ML100K + "ml-100k.item")
    ratings = pd.read_csv(io.BytesIO(inter), sep="\t")
    ratings.columns = ["user_id", "item_id", "rating", "timestamp"]
    items = pd.read_csv(io.BytesIO(item), sep="\t", usecols=[0, 1, 2])
    items.columns = ["item_id", "title", "year"]
    return ratings, items


def _ml100k_from_grouplens() -> tuple[pd.DataFrame, pd.DataFrame]:
    with urllib.request.urlopen(GROUPLENS_ML100K_URL, timeout=60) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    ratings = pd.read_csv(io.BytesIO(archive.read("ml-100k/u.data")), sep="\t",
                          names=["user_id", "item_id", "rating", "timestamp"])
    items = pd.read_csv(io.BytesIO(archive.read("ml-100k/u.item")), sep="|", header=None,
                        encoding="latin-1", usecols=[0, 1, 2])
    items.columns = ["item_id", "title", "year"]
    items["year"] = pd.to_datetime(items["year"], format="%d-%b-%Y", errors="coerce").dt.year
    return ratings, items


def load_movielens_100k(cache_dir: Path | None = None, verify: bool = True) -> pd.DataFrame:
    """MovieLens-100k ratings: columns user_id, item_id (str), rating (float), timestamp (int).

    Cached as ``ml-100k/ratings.tsv`` (and ``items.tsv`` with titles). Tries the
    cache, then the recbole wheel, then GroupLens; raises DataUnavailableError
    naming every source that failed.
    """
    folder = Path(cache_dir or paths.data_dir()) / "ml-100k"
    ratings_file = folder / "ratings.tsv"
    if not ratings_file.is_file():
        errors = []
        for name, source in (("recbole wheel", _ml100k_from_recbole),
                             ("GroupLens", _ml100k_from_grouplens)):
            try:
                ratings, items = source()
                break
            except Exception as exc:  # noqa: BLE001 - try the next source, report all
                errors.append(f"{name}: {exc}")
                log.warning("MovieLens-100k from %s failed: %s", name, exc)
        else:
            raise DataUnavailableError("MovieLens-100k unavailable; " + "; ".join(errors))
        if verify and ratings_checksum(ratings) != ML100K_CHECKSUM:
            raise DataUnavailableError(f"MovieLens-100k from {name} failed its checksum")
        folder.mkdir(parents=True, exist_ok=True)
        items.to_csv(folder / "items.tsv", sep="\t", index=False)
        tmp = ratings_file.with_suffix(".tmp")
        ratings.to_csv(tmp, sep="\t", index=False)
        tmp.replace(ratings_file)
    ratings = pd.read_csv(ratings_file, sep="\t")
    if verify and ratings_checksum(ratings) != ML100K_CHECKSUM:
        raise DataUnavailableError(
            f"{ratings_file} does not match the MovieLens-100k checksum; delete it to fetch again")
    ratings["user_id"] = ratings["user_id"].astype(str)
    ratings["item_id"] = ratings["item_id"].astype(str)
    ratings["rating"] = ratings["rating"].astype(float)
    ratings["timestamp"] = ratings["timestamp"].astype(np.int64)
    return ratings


def load_movielens_titles(cache_dir: Path | None = None) -> dict[str, str]:
    """item_id -> movie title, for showing recommendations to people."""
    load_movielens_100k(cache_dir)
    items = pd.read_csv(Path(cache_dir or paths.data_dir()) / "ml-100k" / "items.tsv", sep="\t")
    return dict(zip(items["item_id"].astype(str), items["title"].astype(str), strict=True))
