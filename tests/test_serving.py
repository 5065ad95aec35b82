"""Serving under load: thread safety, one load, rate limits, prediction logs without personal data."""

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from neo_ml import MLClassificationService, NCFService
from neo_ml.errors import InvalidRequestError, RateLimitExceededError
from neo_ml.serving import RateLimiter

THREADS = 8
SECONDS = 4.0  # per load test: every thread calls for this long


def _hammer(calls, seconds=SECONDS, threads=THREADS):
    """Each thread cycles through ``calls`` (name, function) for ``seconds``; returns every (name, result)."""
    stop = time.monotonic() + seconds
    barrier = threading.Barrier(threads)

    def worker(offset):
        barrier.wait()
        out, n = [], offset
        while time.monotonic() < stop:
            name, call = calls[n % len(calls)]
            out.append((name, call()))
            n += 1
        return out

    with ThreadPoolExecutor(threads) as pool:
        return [row for rows in pool.map(worker, range(threads)) for row in rows]


def _ncf_calls(service):
    rng = np.random.default_rng(0)
    service.recommend("warm-up", 1)  # loads the model
    users = [*rng.choice(sorted(service.user_id_map), 12, replace=False).tolist(), "no-such-user"]
    known = sorted(service.item_id_map)
    items = [[*rng.choice(known, 9, replace=False).tolist(), "no-such-item"] for _ in users]
    calls = []
    for user, batch in zip(users, items, strict=True):
        calls.append((f"recommend {user}", lambda u=user: service.recommend(u, top_k=10)))
        if user != "no-such-user":
            calls.append((f"predict_batch {user}", lambda u=user, b=batch: service.predict_batch(u, b)))
            calls.append((f"predict {user}", lambda u=user, b=batch: service.predict(u, b[:3])))  # known only
    return calls


@pytest.mark.parametrize("with_db", [False, True], ids=["checkpoint", "sqlite"])
def test_eight_threads_give_the_single_thread_answers_for_ncf(trained_checkpoint, db_service, with_db):
    service = db_service if with_db else NCFService(model_path=trained_checkpoint)
    calls = _ncf_calls(service)
    expected = {name: call() for name, call in calls}
    results = _hammer(calls)
    assert len(results) > 20 * len(calls)
    mismatches = [name for name, result in results if result != expected[name]]
    assert not mismatches, f"{len(mismatches)} of {len(results)} answers differ, e.g. {mismatches[0]}"
    print(f"NCF ({'sqlite' if with_db else 'checkpoint'}): {len(results)} calls from {THREADS} threads "
          f"in {SECONDS:.0f} s, 0 errors, all equal to the single-thread answers")


def test_eight_threads_give_the_single_thread_answers_for_the_classifier(trained_service, dewey_subset):
    service = MLClassificationService(model_path=trained_service[0].checkpoint_dir)
    texts = [text for text, _ in dewey_subset[1][:6]]
    calls = [(f"predict {n}", lambda t=t: service.predict(t, top_k=3).predictions) for n, t in enumerate(texts)]
    calls.append(("batch", lambda: [r.predictions for r in service.predict_batch(texts[:3], top_k=2)]))
    expected = {name: call() for name, call in calls}
    results = _hammer(calls)
    assert len(results) >= 2 * len(calls)
    # Scores may differ in the last bits when batches pad differently; labels and ranks may not.
    for name, result in results:
        flat = [p for group in (result if name == "batch" else [result]) for p in group]
        want = [p for group in (expected[name] if name == "batch" else [expected[name]]) for p in group]
        assert [(p.taxonomy_code, p.rank, p.selected) for p in flat] == \
               [(p.taxonomy_code, p.rank, p.selected) for p in want], name
        assert np.allclose([p.confidence for p in flat], [p.confidence for p in want], atol=1e-6), name
    print(f"classifier: {len(results)} calls from {THREADS} threads in {SECONDS:.0f} s, 0 errors")


def test_concurrent_first_calls_load_each_checkpoint_once(trained_checkpoint, trained_service, monkeypatch):
    import neo_ml.classification.service as classification_service
    import neo_ml.ncf.service as ncf_service

    loads = {"ncf": 0, "classifier": 0}

    def counting(module, name, key):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            loads[key] += 1
            time.sleep(0.2)  # a slow load widens the race
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counting(ncf_service, "load_ncf_checkpoint", "ncf")
    counting(classification_service, "load_classifier", "classifier")
    recommender = NCFService(model_path=trained_checkpoint)
    classifier = MLClassificationService(model_path=trained_service[0].checkpoint_dir)
    barrier = threading.Barrier(THREADS)

    def first_call(n):
        barrier.wait()
        return recommender.recommend("1", 3) if n % 2 else classifier.predict("a text about computers").codes

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(first_call, range(THREADS)))
    assert loads == {"ncf": 1, "classifier": 1}
    assert all(a == answers[1] for a in answers[1::2]) and all(a == answers[0] for a in answers[0::2])


def test_the_token_bucket_allows_a_burst_then_the_refill_rate_per_caller():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.acquire("a")
    with pytest.raises(RateLimitExceededError, match=r"caller 'a'; retry in 0\.500 s") as refused:
        limiter.acquire("a")
    assert refused.value.retry_after == pytest.approx(0.5)
    limiter.acquire("b")  # another caller has its own bucket
    now[0] = 0.5
    limiter.acquire("a")  # one token back after 1 / rate seconds
    with pytest.raises(RateLimitExceededError):
        limiter.acquire("a")
    now[0] = 100.0
    for _ in range(3):  # the bucket refills to the burst, no further
        limiter.acquire("a")
    with pytest.raises(RateLimitExceededError):
        limiter.acquire("a")
    with pytest.raises(InvalidRequestError, match="rate must be > 0"):
        RateLimiter(rate=0)


def test_the_rate_limit_holds_across_threads(trained_checkpoint):
    service = NCFService(model_path=trained_checkpoint, rate_limiter=RateLimiter(rate=1e-6, burst=25))
    service.recommend("1", 3, caller="warm-up")  # loads the model

    def call(_):
        try:
            service.recommend("1", 3, caller="client-7")
            return "ok"
        except RateLimitExceededError:
            return "limited"

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(call, range(200)))
    assert outcomes.count("ok") == 25 and outcomes.count("limited") == 175


def test_one_log_line_per_prediction_with_latency_batch_and_cold_start_and_no_ids(
        trained_checkpoint, trained_service, caplog):
    recommender = NCFService(model_path=trained_checkpoint)
    classifier = MLClassificationService(model_path=trained_service[0].checkpoint_dir)
    recommender.recommend("1", 5)
    classifier.predict("warm up")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="neo_ml.predictions"):
        user, items = sorted(recommender.user_id_map)[16], sorted(recommender.item_id_map)[:3]
        recommender.recommend(user, top_k=5)
        recommender.recommend("user-nobody-knows", top_k=4)
        recommender.predict_batch(user, items)
        recommender.predict(user, items[:1])
        classifier.predict("Write to jane.roe@example.org or call (412) 268-3000 about the library")
        classifier.predict_batch(["one text", "another text"])
    lines = [r.getMessage() for r in caplog.records if r.name == "neo_ml.predictions"]
    assert len(lines) == 6
    assert lines[0].startswith("recommend latency_ms=") and "batch=5 cold_start=False" in lines[0]
    assert "batch=4 cold_start=True" in lines[1]
    assert lines[2].startswith("predict_batch") and "batch=3" in lines[2]
    assert lines[3].startswith("predict ") and "batch=1" in lines[3]
    assert lines[4].startswith("predict ") and lines[5].endswith("batch=2 cold_start=False")
    everything = re.sub(r"latency_ms=[\d.]+", "", " ".join(r.getMessage() for r in caplog.records))
    for identifier in (f"={user} ", "user-nobody-knows", *items, "jane.roe", "268-3000", "library"):
        assert identifier not in everything
