from neo_ml.bench.timing import time_calls, time_interleaved


def test_interleaved_calls_take_turns_after_every_warm_up():
    order = []
    calls = {"a": (lambda x: order.append(("a", x)), [(1,), (2,), (3,)]),
             "b": (lambda x: order.append(("b", x)), [(10,), (20,)])}
    samples = time_interleaved(calls, warmup=1)
    assert order == [("a", 1), ("b", 10), ("a", 1), ("b", 10), ("a", 2), ("b", 20), ("a", 3)]
    assert {name: len(s) for name, s in samples.items()} == {"a": 3, "b": 2}
    assert all(t >= 0 for s in samples.values() for t in s)


def test_time_calls_times_each_argument_once_after_the_warm_up():
    seen = []
    assert len(time_calls(seen.append, [(1,), (2,)], warmup=1)) == 2
    assert seen == [1, 1, 2]
