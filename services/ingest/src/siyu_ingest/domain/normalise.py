"""Normalisation rules: Chinese mobiles to E.164, money to fen, platform clocks to UTC, names NFKC-trimmed."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from zoneinfo import ZoneInfo

import phonenumbers

from siyu_ingest.domain.errors import Malformed

SHANGHAI = ZoneInfo("Asia/Shanghai")
_SHANGHAI_FIXED_SINCE = 1992
"""China has kept UTC+8 without daylight saving since September 1991: from 1992 on the offset is a constant."""
_EIGHT_HOURS = timedelta(hours=8)
_MASK = re.compile(r"[*xX×＊]")
_DIGITISH = re.compile(r"^[+\d\s\-()*xX×＊]{5,}$")
_PLAIN_YUAN = re.compile(r"(\d{1,15})(?:\.(\d{1,2}))?", re.ASCII)
_MAX_FEN = Decimal(10) ** 17
"""10^15 yuan, the most the plain form can write: far beyond any order, well inside a 64-bit integer of fen."""


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone number as given: E.164 when it is a person's own number, else the form given (never matched).

    Only a Chinese mobile number identifies a person (``phonenumbers`` says: region CN, type MOBILE). A landline
    (a shop's, an office's, a family's), a service number (400…, 95…), a number outside China, a masked or an
    invalid one is shared or unknowable: matched as an identity it would merge strangers, so it is kept as
    ``partial`` (encrypted beside the lead) and never matched.
    """

    e164: str | None = None
    partial: str | None = None


def normalise_phone(raw: str | None, *, region: str = "CN") -> Phone | None:
    """E.164 for a Chinese mobile number, in any common writing; anything else is kept as partial.

    Written without ``+``, a number is read in China's national plan. ``8613800138000`` (13 digits) is read as
    ``+86 138 0013 8000``: no national number has 13 digits, and after ``86`` come the 11 digits of a mobile, so it
    can only be the country code written without ``+`` or ``00`` (``phonenumbers`` reads it so; a form or an export
    that drops the ``+`` writes exactly this). The same number as ``+86…``, ``0086…``, ``0138…`` or with spaces,
    dashes and full-width digits is the same E.164.
    """
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    if not text:
        return None
    if _MASK.search(text):
        return Phone(partial=text) if _DIGITISH.match(text) else None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return Phone(partial=text) if _DIGITISH.match(text) else None
    if not is_personal_mobile(number):
        return Phone(partial=text)
    return Phone(e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def is_personal_mobile(number: phonenumbers.PhoneNumber) -> bool:
    """A valid Chinese mobile number: the only kind of phone that stands for one person."""
    return (
        phonenumbers.is_valid_number(number)
        and phonenumbers.region_code_for_number(number) == "CN"
        and phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    )


def phones_in_text(text: str, *, region: str = "CN") -> list[str]:
    """Every Chinese mobile number written inside free text (a Douyin private message), in E.164; landlines and
    other numbers in the text are not identities (see :class:`Phone`)."""
    found: list[str] = []
    for match in phonenumbers.PhoneNumberMatcher(unicodedata.normalize("NFKC", text), region):
        if not is_personal_mobile(match.number):
            continue
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if e164 not in found:
            found.append(e164)
    return found


def yuan_to_fen(raw: str | int | float | None) -> int:
    """``"99.00"`` yuan → 9900 fen, rounding half up at the fen; a negative or non-numeric amount is malformed."""
    if raw is None or raw == "":
        return 0
    if isinstance(raw, str) and (plain := _PLAIN_YUAN.fullmatch(raw)):
        # ASCII digits with at most two decimals (every export row): exact in integers, nothing to round
        whole, cents = plain.groups()
        return int(whole) * 100 + (int(cents.ljust(2, "0")) if cents else 0)
    return decimal_yuan_to_fen(raw)


def decimal_yuan_to_fen(raw: str | int | float) -> int:
    """The general rule behind ``yuan_to_fen``: Decimal × 100, rounded half up at the fen."""
    try:
        amount = Decimal(str(raw)) * 100
    except DecimalException as exc:
        raise Malformed(f"amount {raw!r} is not a number") from exc
    if not amount.is_finite() or amount < 0:
        raise Malformed(f"amount {raw!r} is not a non-negative amount")
    if amount >= _MAX_FEN:
        raise Malformed(f"amount {raw!r} is beyond any real order")
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fen(raw: object) -> int:
    """An amount the platform already gives in fen (抖店 ``pay_amount``)."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise Malformed(f"amount {raw!r} is not an integer of fen")
    try:
        value = int(raw)
    except ValueError as exc:
        raise Malformed(f"amount {raw!r} is not an integer of fen") from exc
    if value < 0:
        raise Malformed("negative amount")
    return value


def _wall_clock(raw: str) -> datetime:
    try:
        return datetime.fromisoformat(raw.strip())
    except (ValueError, AttributeError) as exc:
        raise Malformed(f"time {raw!r} is not YYYY-MM-DD HH:MM:SS") from exc


def shanghai_time(raw: str) -> datetime:
    """A platform wall-clock time (``2024-01-01 12:00:00``, Asia/Shanghai) → aware UTC."""
    parsed = _wall_clock(raw)
    if parsed.tzinfo is None:
        if parsed.year >= _SHANGHAI_FIXED_SINCE:
            return (parsed - _EIGHT_HOURS).replace(tzinfo=UTC)  # the same instant, at a third of zoneinfo's cost
        parsed = parsed.replace(tzinfo=SHANGHAI)
    return parsed.astimezone(UTC)


def shanghai_time_iso(raw: str) -> str:
    """``shanghai_time(raw).isoformat()``, without formatting an aware datetime where the offset is fixed (bulk
    imports convert two times per row)."""
    parsed = _wall_clock(raw)
    if parsed.tzinfo is None and parsed.year >= _SHANGHAI_FIXED_SINCE:
        return (parsed - _EIGHT_HOURS).isoformat() + "+00:00"
    return shanghai_time(raw).isoformat()


def epoch_time(raw: object) -> datetime:
    """Epoch seconds or milliseconds (both occur, sometimes in one payload) → aware UTC."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise Malformed(f"time {raw!r} is not an epoch")
    try:
        value = float(raw)
    except ValueError as exc:
        raise Malformed(f"time {raw!r} is not an epoch") from exc
    if value > 1e11:
        value /= 1000
    if not 0 <= value < 1e10:
        raise Malformed(f"time {raw!r} is out of range")
    return datetime.fromtimestamp(value, UTC)


def clean_name(raw: str | None) -> str | None:
    """NFKC-normalised, trimmed, inner whitespace collapsed; empty → None."""
    if raw is None:
        return None
    text = " ".join(unicodedata.normalize("NFKC", str(raw)).split())
    return text or None
