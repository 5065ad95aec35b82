"""MovieLens-100k, fetched for real from the recbole wheel (needs the package registry)."""

import pytest

from neo_ml.data.corpora import ML100K_CHECKSUM, ML100K_SHAPE, load_movielens_100k, ratings_checksum
from neo_ml.errors import DataUnavailableError


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("corpora")


def test_movielens_100k_is_real_and_verified(cache):
    ratings = load_movielens_100k(cache_dir=cache)
    assert (ratings["user_id"].nunique(), ratings["item_id"].nunique(), len(ratings)) == ML100K_SHAPE
    assert ratings_checksum(ratings) == ML100K_CHECKSUM
    assert (cache / "ml-100k" / "ratings.tsv").is_file()


def test_a_tampered_cache_is_refused(cache):
    load_movielens_100k(cache_dir=cache)
    cached = cache / "ml-100k" / "ratings.tsv"
    lines = cached.read_text().splitlines()
    lines[1] = lines[1].replace("\t3\t", "\t5\t", 1)
    cached.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataUnavailableError, match="checksum"):
        load_movielens_100k(cache_dir=cache)
    cached.unlink()


def test_grouplens_download_is_the_fallback(tmp_path, monkeypatch, cache):
    """Without the registry, the upstream zip (u.data, u.item) gives the same verified data."""
    import io
    import zipfile

    import neo_ml.data.corpora as corpora

    ratings = load_movielens_100k(cache_dir=cache)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-100k/u.data", ratings.to_csv(sep="\t", header=False, index=False))
        flags = "|".join("1" if genre in (3, 4, 5) else "0" for genre in range(19))  # u.item's 19 genre flags
        zf.writestr("ml-100k/u.item", f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags}\n")

    def no_registry():
        raise DataUnavailableError("offline")

    monkeypatch.setattr(corpora, "_ml100k_from_recbole", no_registry)
    monkeypatch.setattr(corpora.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(archive.getvalue()))
    fallback = load_movielens_100k(cache_dir=tmp_path)
    assert ratings_checksum(fallback) == ML100K_CHECKSUM
    assert corpora.load_movielens_items(cache_dir=tmp_path).iloc[0]["genres"] == "Animation|Children's|Comedy"


def test_every_source_failing_is_one_clear_error(tmp_path, monkeypatch):
    import neo_ml.data.corpora as corpora

    def fail():
        raise OSError("no route")

    monkeypatch.setattr(corpora, "_ml100k_from_recbole", fail)
    monkeypatch.setattr(corpora, "_ml100k_from_grouplens", fail)
    with pytest.raises(DataUnavailableError, match="recbole wheel: no route; GroupLens: no route"):
        load_movielens_100k(cache_dir=tmp_path)
