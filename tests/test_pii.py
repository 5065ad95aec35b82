"""Personal identifiers are scrubbed before training and before anything is logged."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neo_ml.classification.model import ClassifierConfig, TaxonomyClassifier
from neo_ml.data.pii import PLACEHOLDERS, scrub


@pytest.mark.parametrize("text, expected", [
    ("Mail john.doe+lib@cs.cmu.edu today", "Mail [EMAIL] today"),
    ("call (412) 268-3000 or +44 20 7946 0958", "call [PHONE] or [PHONE]"),
    ("card 4111 1111 1111 1111 expires", "card [CARD] expires"),
    ("IBAN GB82 WEST 1234 5698 7654 32.", "IBAN [IBAN]."),
    ("SSN 078-05-1120", "SSN [SSN]"),
    ("from 192.168.10.1 and fe80::1ff:fe23:4567:890a", "from [IP] and [IP]"),
])
def test_identifiers_are_replaced(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize("text", [
    "In 1993 the library bought 1,000,000 books for 42 dollars.",
    "ISBN 978-3-16-148410-0, Dewey 004.678, version 1.2.3.4.5, at 12:30:45",
    "card-like 1234 5678 9012 3456 fails the Luhn check",
    "the years 2024-2025",
])
def test_ordinary_numbers_are_kept(text):
    assert scrub(text) == text


local = st.from_regex(r"[a-z][a-z0-9._+-]{0,15}[a-z0-9]", fullmatch=True)
domain = st.from_regex(r"[a-z][a-z0-9-]{0,10}\.(org|edu|com|co\.uk)", fullmatch=True)
words = st.lists(st.from_regex(r"[A-Za-z]{1,10}", fullmatch=True), max_size=8).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(before=words, user=local, host=domain, after=words)
def test_every_generated_email_is_removed_and_the_words_kept(before, user, host, after):
    cleaned = scrub(f"{before} {user}@{host} {after}")
    assert "@" not in cleaned and "[EMAIL]" in cleaned
    assert cleaned.replace("[EMAIL]", "").split() == f"{before} {after}".split()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_scrubbing_any_text_is_idempotent_and_never_fails(text):
    once = scrub(text)
    assert scrub(once) == once


@settings(max_examples=100, deadline=None)
@given(area=st.sampled_from(["212", "412", "617", "415"]), exchange=st.integers(200, 999),
       line=st.integers(0, 9999), style=st.sampled_from(["({a}) {e}-{l}", "{a}-{e}-{l}", "+1 {a} {e} {l}"]))
def test_generated_us_phone_numbers_are_removed(area, exchange, line, style):
    number = style.format(a=area, e=exchange, l=f"{line:04d}")
    cleaned = scrub(f"Call the desk at {number} please")
    assert f"{line:04d}" not in cleaned, number


def test_the_classifier_trains_and_predicts_on_scrubbed_text():
    samples = [(f"astronomy telescope galaxy {n} write to star{n}@observatory.edu", ["500"]) for n in range(12)]
    samples += [(f"history war empire {n} call (617) 555-{1000 + n:04d}", ["900"]) for n in range(12)]
    model = TaxonomyClassifier(ClassifierConfig(max_length=16, folds=2, augment_below=0))
    model.fit(samples)
    vocabulary = " ".join(model.lexical.vectorizer.get_feature_names_out())
    assert "observatory" not in vocabulary and "555" not in vocabulary and "star0" not in vocabulary
    assert "telescope" in vocabulary and "email" in vocabulary and "phone" in vocabulary
    assert model.prepare(["mail a@b.org"]) == ["mail [EMAIL]"]
    probabilities = model.predict_proba(["a galaxy seen by star1@observatory.edu"])
    assert model.label_map.labels[int(probabilities.argmax())] == "500"


def test_scrubbing_can_be_turned_off_for_data_already_clean():
    model = TaxonomyClassifier(ClassifierConfig(scrub_pii=False))
    assert model.prepare(["mail a@b.org"]) == ["mail a@b.org"]


def test_placeholders_survive_a_second_pass():
    text = " ".join(PLACEHOLDERS)
    assert scrub(text) == text and not re.search(r"\d", text)
