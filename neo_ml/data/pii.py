"""Personal identifiers out of text, before it is trained on, logged or put in an error message.

``scrub`` replaces e-mail addresses, phone numbers (``phonenumbers``, the
port of Google's libphonenumber), payment card numbers (Luhn-checked),
IBANs (mod-97-checked), US social security numbers and IP addresses with
placeholders such as ``[EMAIL]``. It is idempotent and keeps everything
else, so a classifier sees the same words it would without the identifiers.
"""

from __future__ import annotations

import ipaddress
import re

import phonenumbers

PLACEHOLDERS = ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[SSN]", "[IP]")

EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


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


def _phones(text: str, region: str) -> str:
    if sum(c.isdigit() for c in text) < 7:  # no phone number is shorter; skips most texts cheaply
        return text
    pieces, end = [], 0
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        pieces += [text[end:match.start], "[PHONE]"]
        end = match.end
    return "".join(pieces) + text[end:] if pieces else text


def scrub(text: str, region: str = "US") -> str:
    """``text`` with personal identifiers replaced by placeholders; ``region`` reads national phone formats."""
    text = EMAIL.sub("[EMAIL]", text)
    text = IBAN.sub(_iban, text)
    text = CARD.sub(_card, text)
    text = SSN.sub("[SSN]", text)
    text = IPV4.sub(_ip, text)
    text = IPV6.sub(_ip, text)
    return _phones(text, region)
