"""Which phone numbers identify a person: only Chinese mobiles, in whatever writing; landlines, service numbers and
numbers outside China never do (a shop's shared line must not merge the strangers who give it)."""

from __future__ import annotations

import phonenumbers
from hypothesis import given
from hypothesis import strategies as st

from siyu_ingest.domain.normalise import normalise_phone, phones_in_text

MOBILE_PREFIXES = ["130", "135", "138", "139", "147", "150", "158", "166", "170", "177", "186", "188", "191", "199"]
AREA_CODES = ["10", "20", "21", "22", "23", "24", "25", "27", "28", "29", "311", "351", "471", "571", "755", "851"]
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

mobiles = st.builds(
    lambda p, rest: p + rest, st.sampled_from(MOBILE_PREFIXES), st.text("0123456789", min_size=8, max_size=8)
)


def writings_of_mobile(national: str) -> list[str]:
    spaced = f"{national[:3]} {national[3:7]} {national[7:]}"
    return [
        national,
        spaced,
        f"{national[:3]}-{national[3:7]}-{national[7:]}",
        f"+86{national}",
        f"+86 {spaced}",
        f"0086{national}",
        f"86{national}",  # the country code without + (see normalise_phone: no other reading exists)
        f"0{national}",
        national.translate(FULL_WIDTH),
    ]


@given(mobiles)
def test_a_chinese_mobile_is_one_identity_in_every_writing(national: str) -> None:
    assert {normalise_phone(w) for w in writings_of_mobile(national)} == {normalise_phone(f"+86{national}")}
    phone = normalise_phone(national)
    assert phone is not None and phone.e164 == f"+86{national}"


landlines = st.builds(
    lambda area, first, rest: (area, first + rest),
    st.sampled_from(AREA_CODES),
    st.sampled_from("2345678"),
    st.text("0123456789", min_size=6, max_size=7),
)


@given(landlines, st.integers(min_value=0, max_value=5))
def test_a_landline_is_never_an_identity(landline: tuple[str, str], style: int) -> None:
    area, local = landline
    written = [
        f"0{area}-{local}",
        f"(0{area}) {local}",
        f"+86 {area} {local}",
        f"86{area}{local}",
        f"0086{area}{local}",
        f"0{area}{local}",
    ][style]
    phone = normalise_phone(written)
    assert phone is not None and phone.e164 is None and phone.partial == written
    assert phones_in_text(f"店里电话 {written} 欢迎来电") == []


@given(
    st.sampled_from(["400", "800"]).flatmap(lambda p: st.text("0123456789", min_size=7, max_size=7).map(p.__add__))
    | st.sampled_from(["+1 650 253 0000", "+44 7700 900123", "+852 9123 4567", "+81 90 1234 5678", "95588", "10086"])
)
def test_service_and_foreign_numbers_are_never_identities(written: str) -> None:
    phone = normalise_phone(written)
    assert phone is None or phone.e164 is None


@given(st.text(max_size=40))
def test_any_text_is_a_chinese_mobile_or_no_identity(text: str) -> None:
    phone = normalise_phone(text)
    found = [phone.e164] if phone and phone.e164 else []
    for e164 in found + phones_in_text(text):
        number = phonenumbers.parse(e164)
        assert phonenumbers.region_code_for_number(number) == "CN"
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
