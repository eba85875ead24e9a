import uuid

from hypothesis import given
from hypothesis import strategies as st

from siyu_shared.events.envelope import deterministic_event_id
from siyu_shared.ids import NameIds


@given(st.text(max_size=200))
def test_name_ids_are_uuid5_text(name: str) -> None:
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "siyu:test")
    assert NameIds(namespace)(name) == str(uuid.uuid5(namespace, name))


@given(st.lists(st.text(max_size=40), min_size=1, max_size=5))
def test_deterministic_event_id_is_uuid5_of_the_joined_parts(parts: list[str]) -> None:
    assert deterministic_event_id(*parts) == str(uuid.uuid5(uuid.NAMESPACE_URL, "siyu:" + "/".join(parts)))
