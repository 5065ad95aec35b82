import numpy as np
import pytest

from neo_ml.classification.baseline import TfidfLinearBaseline, evaluate_baseline
from neo_ml.classification.metrics import classification_report


def test_report_single_and_multi_label_by_hand():
    labels = ["a", "b", "c"]
    truth = [["a"], ["b"], ["a", "c"]]
    predicted = [["a"], ["c"], ["a", "c"]]
    scores = np.array([[0.9, 0.1, 0.0], [0.1, 0.2, 0.7], [0.2, 0.1, 0.8]])
    report = classification_report(truth, predicted, scores, labels)
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["top1_precision"] == pytest.approx(2 / 3)  # the second document's top label is wrong
    # micro: tp = a,a,c = 3; fp = c (doc 2) = 1; fn = b = 1
    assert report["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    f1 = {"a": 1.0, "b": 0.0, "c": 2 / 3}
    assert report["macro_f1"] == pytest.approx(np.mean(list(f1.values())))


def _topic_corpus(n, seed):
    rng = np.random.default_rng(seed)
    vocab = {"space": "orbit rocket nasa launch moon", "med": "doctor patient disease drug clinic",
             "cars": "engine wheel drive brake dealer"}
    samples = []
    for i in range(n):
        topic = list(vocab)[i % 3]
        words = rng.choice(vocab[topic].split(), 6).tolist() + rng.choice(["the", "a", "of", "and"], 4).tolist()
        samples.append((" ".join(words), [topic]))
    return samples


def test_baseline_learns_a_separable_corpus():
    train, test = _topic_corpus(60, 0), _topic_corpus(30, 1)
    report = evaluate_baseline(train, test)
    assert report["accuracy"] > 0.9 and report["documents"] == 30


def test_baseline_multi_label_predicts_at_least_one_label():
    train = [(text, labels + (["extra"] if i % 4 == 0 else [])) for i, (text, labels) in
             enumerate(_topic_corpus(60, 0))]
    model = TfidfLinearBaseline().fit(train)
    assert model.multi_label
    assert all(len(labels) >= 1 for labels in model.predict(["orbit moon", "zzz unknown words"]))


def test_word_pairs_tell_apart_texts_that_share_every_word():
    """"not good" against "good, not bad": the same words, only their pairs differ; the state keeps the setting,
    and a state saved before the setting existed reads words only."""
    from neo_ml.classification.lexical import LexicalScorer

    texts = ["not good but bad", "good not bad but"] * 30
    targets = np.array([[1, 0], [0, 1]] * 30)
    words, pairs = (LexicalScorer(ngrams=n).fit(texts, targets) for n in (1, 2))
    assert np.allclose(words.scores(texts[:2])[0], words.scores(texts[:2])[1])
    assert pairs.scores(texts[:2]).argmax(1).tolist() == [0, 1]
    arrays, values = pairs.state()
    assert np.allclose(LexicalScorer.from_state(arrays, values).scores(texts[:2]), pairs.scores(texts[:2]))
    values.pop("ngrams")
    assert LexicalScorer.from_state(*words.state()).ngrams == 1
    assert LexicalScorer.from_state(arrays, values).ngrams == 1
