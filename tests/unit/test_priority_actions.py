"""What makes two actions duplicates, and which cited priorities are unknown."""

from __future__ import annotations

from uuid import UUID, uuid4

from services.priority.domain.actions import duplicate_key, normalise, unknown_priorities

P1, P2, P3 = uuid4(), uuid4(), uuid4()
DESCRIPTION = "Weekly drop-in with a mental health worker at the community café."
SERVICE, PLACE = "community mental health team", "Tower Hamlets"


def key(description: str = DESCRIPTION, service: str = SERVICE, place: str = PLACE,
        priorities: tuple[UUID, ...] = (P1, P2)) -> str:
    return duplicate_key(description, service, place, priorities)


def test_the_same_action_against_the_same_priorities_is_a_duplicate() -> None:
    assert key() == key()


def test_case_spacing_and_final_punctuation_do_not_make_an_action_new() -> None:
    assert key("  weekly DROP-IN with a mental health  worker at the community café ") == key()
    assert key(service="Community Mental Health Team", place="tower hamlets ") == key()


def test_the_order_of_priorities_does_not_matter() -> None:
    assert key(priorities=(P2, P1)) == key(priorities=(P1, P2))


def test_a_different_priority_set_makes_a_different_action() -> None:
    assert key(priorities=(P1,)) != key(priorities=(P1, P2))
    assert key(priorities=(P1, P2, P3)) != key(priorities=(P1, P2))


def test_a_different_service_place_or_description_makes_a_different_action() -> None:
    assert key(service="talking therapies") != key()
    assert key(place="Hackney") != key()
    assert key(description="Fortnightly drop-in at the library.") != key()


def test_fields_cannot_run_into_each_other() -> None:
    assert key(description="drop-in a", service="b") != key(description="drop-in", service="a b")


def test_normalise_keeps_the_words() -> None:
    assert normalise(" Talking\tTherapies!! ") == "talking therapies"


def test_unknown_priorities_are_named_by_position() -> None:
    broken = unknown_priorities([P1, P3, P2], agreed={P1, P2})
    assert [(b.field, b.problem) for b in broken] == [
        ("priority_ids.1", "no agreed priority has this id")
    ]
    assert unknown_priorities([P1], agreed={P1}) == []
