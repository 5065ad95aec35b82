"""Personal identifiers out of text, before it is trained on, logged or put in an error message.

``scrub`` replaces e-mail addresses, phone numbers (``phonenumbers``, the
port of Google's libphonenumber), payment card numbers (Luhn-checked),
IBANs (mod-97-checked), US social security numbers and IP addresses with
placeholders such as ``[EMAIL]``. It is idempotent and keeps everything
else, so a classifier sees the same words it would without the identifiers.

Every step runs in time linear in the text, whatever the text: ``scrub`` runs
on user input while holding the GIL, so one quadratic pattern fed a long
unbroken token stalls the whole process. Each pattern therefore either starts
only where a run of its characters starts (a lookbehind), or has bounded
repetitions, and no two adjacent quantifiers can match the same character.
``neo_ml.bench.worst_case`` times each step on its worst inputs.
"""

from __future__ import annotations

import ipaddress
import re

import phonenumbers

PLACEHOLDERS = ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[SSN]", "[IP]")

# The local part starts only where a run of local-part characters starts, so a long run is entered once
# (not once per character, which made the old pattern quadratic); possessive runs never backtrack, which
# changes nothing because '@' and '.' end the runs they follow.
_LOCAL = r"[\w.+%-]++@[\w-]++(?:\.[\w-]++)+"
EMAIL = re.compile(r"(?<![\w.+%-])" + _LOCAL)
_EMAIL_HERE = re.compile(_LOCAL)  # for an address glued to the end of the previous one, e.g. "a@b.org.c@d.org"
CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")

# Phone numbers: PhoneNumberMatcher on a whole text copies the rest of the text for every candidate that
# looks like a time stamp (quadratic) and gives up for good after 65535 failed candidates (phones after
# that are kept). It is fed instead one window per group of digits that a single number could span.
_GAP = 24  # more non-digits than this never sit between two digits of one number (4 punctuation marks, " ext. ")
_DIGIT_GROUP = re.compile(rf"\d(?:\D{{0,{_GAP}}}\d)*")
_BETWEEN_DIGITS = re.compile(r"\D+")
# A letter outside every extension label ("ext", "extensión", "x", "int", "anexo", "доб", full-width forms),
# or a line break, cannot be inside one number: the matcher's candidates never span it.
_NOT_IN_A_NUMBER = re.compile(r"[^\W\d_aeinostxóAEINOSTXÓｅｘｔｎｉＥＸＴＮＩдобДОБ]|[\n\r]")
_LEAD = 11  # a candidate starts at most 10 characters ("(+", brackets) before its first digit; one more to see
_TAIL = 8  # the matcher looks past a candidate's last digit at a '#', the next character and ":MM"
_MIN_DIGITS = 7  # no valid number has fewer (a 3-digit country code and a 4-digit number)
_OVERLAP = 48  # longer than any number with its extension and the matcher's look past it
MATCHER_BUDGET = 50_000  # characters of one text the phone matcher reads; the rest fails closed (_phone_spans)
_LONG = 256  # far longer than a number with its extension ("+1 (412) 268-3000 ext. 1234" has 27 characters)


def _luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if _luhn(digits) else match.group()


def _iban(match: re.Match) -> str:
    compact = match.group().replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return "[IBAN]" if int(number) % 97 == 1 else match.group()


def _ip(match: re.Match) -> str:
    try:
        ipaddress.ip_address(match.group())
    except ValueError:
        return match.group()
    return "[IP]"


def _emails(text: str) -> str:
    """``EMAIL.sub("[EMAIL]", text)`` plus the address that starts right where the previous one ended.

    The lookbehind keeps a run from being entered at every character, but it would also skip a second
    address glued to the first ("a@b.org.c@d.org"), which the unanchored pattern used to replace.
    """
    pieces, end = [], 0
    while match := (end and _EMAIL_HERE.match(text, end)) or EMAIL.search(text, end):
        pieces += [text[end:match.start()], "[EMAIL]"]
        end = match.end()
    return "".join(pieces) + text[end:] if pieces else text


def _number_regions(text: str):
    """(first digit, end of last digit) of each stretch of text that could hold phone numbers.

    Digits further apart than ``_GAP``, or with a character no number contains between them, are never
    in one candidate of the matcher, so each stretch is matched on its own with the same result.
    """
    for group in _DIGIT_GROUP.finditer(text):
        start = group.start()
        for gap in _BETWEEN_DIGITS.finditer(text, group.start(), group.end()):
            if _NOT_IN_A_NUMBER.search(gap.group()):
                yield start, gap.start()
                start = gap.end()
        yield start, group.end()


def _matches(text: str, begin: int, stop: int, region: str, owned: tuple[int, int]):
    """(start, end) of the valid numbers the matcher finds in ``text[begin:stop]`` that start in ``owned``."""
    for match in phonenumbers.PhoneNumberMatcher(text[begin:stop], region, leniency=phonenumbers.Leniency.VALID):
        if owned[0] <= begin + match.start < owned[1]:  # the context on either side is another window's
            yield begin + match.start, begin + match.end


def _cut(text: str, start: int, last: int) -> int:
    """Where the piece of a long run that starts at ``start`` ends: a space, if any, near ``_LONG`` on."""
    if last - start <= _LONG:
        return last
    space = text.rfind(" ", start + _LONG // 2, start + _LONG)
    return space if space > start else start + _LONG


def _phone_spans(text: str, region: str):
    """(start, end) of every valid phone number in ``text``, found window by window.

    A run of digits and punctuation longer than ``_LONG`` is no one number, and on it the matcher is slow
    and copies the text's tail for every time-stamp-like candidate, so such a run is matched in pieces cut
    at spaces; only there can a result differ from the matcher's on the whole text.

    The matcher parses and validates every candidate (about 5 microseconds per character of digit-dense
    text), so it reads at most ``MATCHER_BUDGET`` characters of a text. Past that the scrubber fails
    closed: every further piece with enough digits to be a number is taken for one, so nothing leaks and
    no text costs more than about half a second, however long and however full of digits.
    """
    owned_from, budget = 0, MATCHER_BUDGET
    for first, last in _number_regions(text):
        begin = max(owned_from - 1, first - _LEAD, 0)
        while begin < last:
            stop = _cut(text, max(begin, first), last)
            if len(re.findall(r"\d", text[begin:stop])) >= _MIN_DIGITS:
                # A cut piece reads on past its cut, so a number the cut splits is still seen whole.
                end = min((stop + _TAIL) if stop == last else (stop + _OVERLAP), len(text))
                if budget > 0:
                    budget -= end - begin
                    yield from _matches(text, begin, end, region, (owned_from, stop))
                else:
                    yield max(begin, first, owned_from), stop
            begin = owned_from = stop
        owned_from = last


def _phones(text: str, region: str) -> str:
    pieces, end = [], 0
    for start, stop in _phone_spans(text, region):
        pieces += [text[end:start], "[PHONE]"]
        end = stop
    return "".join(pieces) + text[end:] if pieces else text


def scrub(text: str, region: str = "US") -> str:
    """``text`` with personal identifiers replaced by placeholders; ``region`` reads national phone formats."""
    text = _emails(text)
    text = IBAN.sub(_iban, text)
    text = CARD.sub(_card, text)
    text = SSN.sub("[SSN]", text)
    text = IPV4.sub(_ip, text)
    text = IPV6.sub(_ip, text)
    return _phones(text, region)
