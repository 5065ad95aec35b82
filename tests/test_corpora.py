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
