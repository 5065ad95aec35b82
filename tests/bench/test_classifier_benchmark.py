"""The benchmark's small real subsets: the size and shape the issue asks for, nothing shared with the test side."""

from neo_ml.bench.classifier import SMALL_GROUPS, SMALL_SAMPLES, SMALL_TEST, small_subset


def test_small_newsgroup_subset_has_ten_balanced_groups_and_disjoint_held_out_documents():
    train, test = small_subset("20ng", seed=1)
    groups = [labels[0] for _, labels in train]
    assert len(train) == SMALL_SAMPLES and len(set(groups)) == SMALL_GROUPS
    assert all(groups.count(g) == SMALL_SAMPLES // SMALL_GROUPS for g in set(groups))
    assert len(test) == SMALL_TEST and {labels[0] for _, labels in test} <= set(groups)
    assert not {text for text, _ in train} & {text for text, _ in test}


def test_small_dewey_subset_is_multi_label():
    train, test = small_subset("20ng-dewey", seed=0)
    assert len(train) == SMALL_SAMPLES and len(test) == SMALL_TEST
    assert 10 <= sum(len(codes) == 2 for _, codes in train) <= 70
    assert small_subset("20ng-dewey", seed=0)[0] == train  # seeded
