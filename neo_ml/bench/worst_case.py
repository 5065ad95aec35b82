"""Worst-case inputs for everything that reads user text, timed at growing sizes.

A pattern or parser that is superlinear on some input stalls a server (it holds
the GIL) the first time a user sends that input, so each case here is the worst
input known for one step: a long unbroken token for a pattern that rescans runs,
a long run of separators for the phone matcher, a huge number for a JSON parser.
``run_worst_case`` times every case at each size and flags a case whose largest
size takes over 1 s per MiB, or whose time more than triples when the size doubles.
Each case runs in a child process, so a case that hangs is reported as over
budget instead of hanging the benchmark.

    python -m neo_ml.bench.worst_case [--sizes 262144 524288 1048576] [--json OUT] [--only email]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neo_ml.data import pii
from neo_ml.errors import DataFormatError

SIZES = (262144, 524288, 1048576)
SECONDS_PER_MIB = 1.0  # the target: a megabyte of the worst input in under a second
BUDGET_S = 5.0  # one timed call longer than this is stopped and reported as over budget
MAX_GROWTH = 3.0  # doubling the size may double the time, with room for noise; quadratic gives 4
NOISE_S = 0.05  # below this the growth ratio is mostly timer noise and is not judged
FAST_S = 0.5  # calls faster than this are repeated and the median of 3 is kept


def _fill(unit: str, n: int) -> str:
    """``unit`` repeated to exactly ``n`` characters."""
    return (unit * (n // len(unit) + 1))[:n]


def _prose(core: Callable[[int], str]) -> Callable[[int], str]:
    """``core`` of nearly ``n`` characters inside a sentence, as a pasted blob arrives."""
    return lambda n: "Please see the attached key " + core(max(0, n - 40)) + " and reply soon."


@dataclass(frozen=True)
class Case:
    """One worst case: ``target`` is called on ``build(n)``, an input of about ``n`` characters."""

    target: Callable[[Any], Any]
    build: Callable[[int], Any]


def _sub(pattern, replacement):
    return lambda text: pattern.sub(replacement, text)


def _phones(text: str) -> str:
    return pii._phones(text, "US")


def _interaction(field: str) -> Callable[[Any], Any]:
    """parse_interaction on a row whose ``field`` is the input; a DataFormatError is a fine answer."""
    def run(value):
        from neo_ml.data.interactions import parse_interaction  # imported here: another change may break it
        row = {"user_id": "u", "item_id": "i", "timestamp": 0, **{field: value}}
        with contextlib.suppress(DataFormatError):
            parse_interaction(row, "bench.json", 0)
    return run


def _sample(text: str) -> None:
    from neo_ml.data.text import parse_sample
    with contextlib.suppress(DataFormatError):
        parse_sample({"text": text, "taxonomy_codes": ["x"]}, "bench.json", 0)


def _scratch(pid: int) -> Path:
    """The one file a child process writes its JSON inputs to; the parent removes it."""
    return Path(tempfile.gettempdir()) / f"neo-worst-case-{pid}.json"


def _json_file(content: Callable[[int], str]) -> Callable[[int], Path]:
    """A builder writing ``content(n)`` to a file, so that only the reading is timed."""
    def build(n: int) -> Path:
        path = _scratch(os.getpid())
        path.write_text(content(n), encoding="utf-8")
        return path
    return build


def _read_json(path: Path) -> None:
    from neo_ml.data.documents import read_json
    with contextlib.suppress(DataFormatError):
        read_json(path)


def _url(function_name: str) -> Callable[[str], Any]:
    """``neo_ml.data.db``'s ``function_name`` on a URL text; a DatabaseError is a fine answer."""
    def run(text: str):
        from neo_ml.data import db
        from neo_ml.errors import DatabaseError
        with contextlib.suppress(DatabaseError):
            getattr(db, function_name)(text)
    return run


def _config(path: Path) -> None:
    from neo_ml.workbook.pipeline import PipelineError, load_config
    with contextlib.suppress(PipelineError):
        load_config(path)


def _classifier_text(text: str) -> None:
    """What the classifier does to a text before any model sees it: capped, then scrubbed."""
    from neo_ml.classification.model import TaxonomyClassifier
    TaxonomyClassifier().prepare([text])


def _unicode(text: str) -> None:
    from neo_ml.data.documents import unicode_problem
    unicode_problem(text)


CASES: dict[str, Case] = {
    "email/long word": Case(pii._emails, lambda n: "a" * n),
    "email/hex blob in prose": Case(pii._emails, _prose(lambda n: _fill("0123456789abcdef", n))),
    "email/dotted run": Case(pii._emails, lambda n: _fill("a.", n)),
    "email/local part then @": Case(pii._emails, lambda n: "a" * (n - 1) + "@"),
    "email/@ then domain without dot": Case(pii._emails, lambda n: "a@" + "a" * (n - 2)),
    "email/many @": Case(pii._emails, lambda n: _fill("a@", n)),
    "email/glued addresses": Case(pii._emails, lambda n: _fill("a@b.c.", n)),
    "email/long dotted domain": Case(pii._emails, lambda n: "a@" + _fill("b.", n - 2)),
    "iban/letters": Case(_sub(pii.IBAN, pii._iban), lambda n: "GB82" + "A" * (n - 4)),
    "iban/spaced groups": Case(_sub(pii.IBAN, pii._iban), lambda n: _fill("GB82 WEST 1234 5698 7654 3 ", n)),
    "iban/valid ibans": Case(_sub(pii.IBAN, pii._iban), lambda n: _fill("GB82 WEST 1234 5698 7654 32 ", n)),
    "card/digits": Case(_sub(pii.CARD, pii._card), lambda n: "1" * n),
    "card/spaced digits": Case(_sub(pii.CARD, pii._card), lambda n: _fill("1 ", n)),
    "card/valid cards": Case(_sub(pii.CARD, pii._card), lambda n: _fill("4111 1111 1111 1111 ", n)),
    "ssn/near misses": Case(_sub(pii.SSN, "[SSN]"), lambda n: _fill("123-45-", n)),
    "ssn/valid ssns": Case(_sub(pii.SSN, "[SSN]"), lambda n: _fill("078-05-1120 ", n)),
    "ipv4/dotted digits": Case(_sub(pii.IPV4, pii._ip), lambda n: _fill("1.", n)),
    "ipv4/addresses": Case(_sub(pii.IPV4, pii._ip), lambda n: _fill("192.168.10.1 ", n)),
    "ipv6/colons": Case(_sub(pii.IPV6, pii._ip), lambda n: ":" * n),
    "ipv6/hex groups": Case(_sub(pii.IPV6, pii._ip), lambda n: _fill("a:", n)),
    "ipv6/double colons": Case(_sub(pii.IPV6, pii._ip), lambda n: _fill("::1 ", n)),
    "phone/digits": Case(_phones, lambda n: "1" * n),
    "phone/spaced digits": Case(_phones, lambda n: _fill("1 ", n)),
    "phone/brackets": Case(_phones, lambda n: "(" * n),
    "phone/plus ones": Case(_phones, lambda n: _fill("+1", n)),
    "phone/dashed digits": Case(_phones, lambda n: _fill("1-", n)),
    "phone/mixed punctuation": Case(_phones, lambda n: _fill("(1) +2-3.4/5 ", n)),
    "phone/time stamps": Case(_phones, lambda n: _fill("2024-01-15 12:30 ", n)),
    "phone/extension spaces": Case(_phones, lambda n: "1234567" + " " * (n - 7)),
    "phone/numbers in prose": Case(_phones, lambda n: _fill("page 12 of 345, ", n)),
    "phone/7-digit numbers": Case(_phones, lambda n: _fill("1234567 ", n)),
    "phone/valid numbers": Case(_phones, lambda n: _fill("call (412) 268-3000 now. ", n)),
    "scrub/hex blob in prose": Case(pii.scrub, _prose(lambda n: _fill("0123456789abcdef", n))),
    "scrub/long word": Case(pii.scrub, lambda n: "a" * n),
    "scrub/digits and dots": Case(pii.scrub, lambda n: _fill("1.2-3 4:5@6", n)),
    "scrub/every identifier": Case(pii.scrub, lambda n: _fill(
        "a.b@c.org (412) 268-3000 4111 1111 1111 1111 GB82 WEST 1234 5698 7654 32 078-05-1120 10.0.0.1 ::1 ", n)),
    "parse_interaction/timestamp T111": Case(_interaction("timestamp"), lambda n: "2024-01-15T" + "1" * (n - 11)),
    "parse_interaction/timestamp 999": Case(_interaction("timestamp"), lambda n: "9" * n),
    "parse_interaction/timestamp 2024-": Case(_interaction("timestamp"), lambda n: _fill("2024-", n)),
    "parse_interaction/timestamp spaces": Case(_interaction("timestamp"), lambda n: "2024-01-15" + " " * (n - 10)),
    "parse_interaction/user_id": Case(_interaction("user_id"), lambda n: "u" * n),
    "parse_interaction/interaction_type": Case(_interaction("interaction_type"), lambda n: "v" * n),
    "parse_sample/text": Case(_sample, lambda n: _fill("word ", n)),
    "read_json/huge integer": Case(_read_json, _json_file(lambda n: "1" * n)),
    "read_json/deep nesting": Case(_read_json, _json_file(lambda n: "[" * (n // 2) + "]" * (n // 2))),
    "unicode check/surrogate at the end": Case(_unicode, lambda n: "é" * (n - 1) + "\ud800"),
    "classifier text/every identifier": Case(_classifier_text, lambda n: _fill(
        "a.b@c.org (412) 268-3000 4111 1111 1111 1111 GB82 WEST 1234 5698 7654 32 078-05-1120 10.0.0.1 ::1 ", n)),
    "url/redact long password": Case(_url("redact_url"), lambda n: "postgresql://u:" + "p" * n + "@h/db"),
    "url/redact many schemes": Case(_url("redact_url"), lambda n: "x" + _fill("://a", n)),
    "url/redact many @": Case(_url("redact_url"), lambda n: "postgresql://" + _fill("a:@", n)),
    "url/redact many secrets": Case(_url("redact_url"), lambda n: "postgresql://h/db?" + _fill("password=x&", n)),
    "url/parse many @": Case(_url("parse_database_url"), lambda n: "postgresql://" + _fill("a:@", n)),
    "url/parse long port": Case(_url("parse_database_url"), lambda n: "postgresql://h:" + "9" * n + "/db"),
    "url/parse many colons": Case(_url("parse_database_url"), lambda n: "postgresql://" + _fill(":", n)),
    "config/huge integer": Case(_config, _json_file(lambda n: "seed: " + "1" * n)),
    "config/deep nesting": Case(_config, _json_file(lambda n: "seed: " + "[" * (n // 2))),
    "config/long string": Case(_config, _json_file(lambda n: "seed: '" + "x" * n + "'")),
}


def _time_once(case: Case, size: int) -> float:
    value = case.build(size)
    start = time.perf_counter()
    case.target(value)
    return time.perf_counter() - start


def _time(case: Case, size: int) -> float:
    """Seconds for one call; the median of 3 when a call is fast enough that noise matters."""
    first = _time_once(case, size)
    if first >= FAST_S:
        return first
    return statistics.median([first, _time_once(case, size), _time_once(case, size)])


def _child(name: str, sizes: tuple[int, ...], pipe) -> None:
    """Runs in the child process: sends (size, seconds) per size, or ("unhandled", exception name)."""
    try:
        for size in sizes:
            pipe.send((size, _time(CASES[name], size)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, by name
        pipe.send(("unhandled", type(exc).__name__))


def _measure(name: str, sizes: tuple[int, ...], budget_s: float) -> tuple[dict[int, float | None], str]:
    """Seconds per size (None once over budget) and a note, with the case running in a child process."""
    context = multiprocessing.get_context("fork")  # the child inherits the imports instead of redoing them
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(name, sizes, sender), daemon=True)
    child.start()
    seconds: dict[int, float | None] = dict.fromkeys(sizes)
    note = ""
    try:
        for _ in sizes:
            if not receiver.poll(budget_s + 3 * FAST_S + 2.0):  # a call, its repeats and building the input
                note = f"over budget (> {budget_s:g} s)"
                break
            size, value = receiver.recv()
            if size == "unhandled":
                note = f"unhandled {value}"
                break
            seconds[size] = value
    finally:
        child.kill()
        child.join()
        _scratch(child.pid).unlink(missing_ok=True)
    return seconds, note


def _verdict(seconds: dict[int, float | None], note: str) -> tuple[float | None, bool, str]:
    """(growth ratio between the two largest sizes, pass, verdict text)."""
    sizes = sorted(seconds)
    largest = seconds[sizes[-1]]
    previous = seconds[sizes[-2]] if len(sizes) > 1 else None
    ratio = largest / previous if largest is not None and previous else None
    if note:
        return ratio, False, note
    limit = SECONDS_PER_MIB * sizes[-1] / 2**20
    if largest > limit:
        return ratio, False, f"slow (> {limit:.3g} s)"
    if ratio is not None and ratio > MAX_GROWTH and largest > NOISE_S:
        return ratio, False, f"superlinear (x{ratio:.1f} per doubling)"
    return ratio, True, "ok"


def run_worst_case(sizes=SIZES, budget_s: float = BUDGET_S, only: str | None = None) -> dict[str, dict]:
    """Per case: seconds at each size, ``ratio`` of the two largest, ``passed``, ``verdict``.

    ``only`` keeps the cases whose name contains it.
    """
    sizes = tuple(sorted(sizes))
    results = {}
    for name in CASES:
        if only and only not in name:
            continue
        seconds, note = _measure(name, sizes, budget_s)
        ratio, passed, verdict = _verdict(seconds, note)
        results[name] = {"seconds": seconds, "ratio": ratio, "passed": passed, "verdict": verdict}
    return results


def _size_label(size: int) -> str:
    return f"{size // 2**20} MiB" if size % 2**20 == 0 else f"{size / 1024:g} kiB"


def markdown(results: dict[str, dict]) -> str:
    """The results as a markdown table: case, seconds per size, growth ratio, verdict."""
    sizes = sorted(next(iter(results.values()))["seconds"]) if results else []
    lines = ["| case | " + " | ".join(_size_label(s) for s in sizes) + " | ratio | verdict |",
             "|---" * (len(sizes) + 3) + "|"]
    for name, row in results.items():
        cells = ["-" if row["seconds"][s] is None else f"{row['seconds'][s]:.4f}" for s in sizes]
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} | {row['verdict']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The command: prints the table, optionally writes JSON, and returns 0 only if every case passed."""
    parser = argparse.ArgumentParser(prog="python -m neo_ml.bench.worst_case", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="input sizes in characters")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds before a call is stopped")
    args = parser.parse_args(argv)
    results = run_worst_case(args.sizes, args.budget, args.only)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0 if all(row["passed"] for row in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
