"""Resolving who fed an action, over a fake graph that fills in as late events arrive."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from uuid import UUID, uuid4

from services.feedback.domain.chain import (
    ActionGraph,
    ActionNode,
    ConversationNode,
    InsightNode,
    ParticipantNode,
    Recipient,
    recipients,
    threads,
)

P1, P2, I1, I2 = uuid4(), uuid4(), uuid4(), uuid4()
C1, C2, C3 = uuid4(), uuid4(), uuid4()


def person(pid: str, channel: str = "email", **kw: object) -> ParticipantNode:
    values: dict[str, object] = {"to_recontact": channel != "none", "channel": channel,
                                 "earliest_contact_on": None, "erased": False}
    values.update(kw)
    return ParticipantNode(pid, **values)  # type: ignore[arg-type]


def conversation(cid: UUID, pid: str, *categories: str) -> ConversationNode:
    return ConversationNode(cid, pid, categories, uuid4())


def full_graph(status: str = "in_progress") -> ActionGraph:
    action = ActionNode(uuid4(), (P1, P2), status, "drop-in", "CMHT", "Hackney",  # type: ignore[arg-type]
                        "CMHF", "Access", uuid4())
    return ActionGraph(
        action=action,
        priority_insights={P1: (I1,), P2: (I1, I2)},
        insights={I1: InsightNode(I1, "community_support", (C1, C2)),
                  I2: InsightNode(I2, "continuity_of_care", (C3,))},
        conversations={C1: conversation(C1, "p_amina001", "community_support"),
                       C2: conversation(C2, "p_bilal002", "cultural_factors"),
                       C3: conversation(C3, "p_amina001", "continuity_of_care", "community_support")},
        participants={"p_amina001": person("p_amina001"),
                      "p_bilal002": person("p_bilal002", "peer_in_person",
                                           earliest_contact_on=date(2026, 6, 1))},
    )


def test_every_consenting_voice_on_a_complete_path_is_to_be_told_once() -> None:
    assert recipients(full_graph(), "in_progress") == [
        Recipient("p_amina001", "email", None),
        Recipient("p_bilal002", "peer_in_person", date(2026, 6, 1)),
    ]


def test_a_thread_names_each_priority_insight_and_conversation_once() -> None:
    thread = threads(full_graph())["p_amina001"]
    assert thread.priority_ids == (P1, P2)
    assert thread.insight_ids == (I1, I2)
    assert thread.conversation_ids == (C1, C3)
    assert thread.points == ("community_support", "continuity_of_care")


def test_points_fall_back_to_the_insight_heading_when_their_categories_differ() -> None:
    assert threads(full_graph())["p_bilal002"].points == ("community_support",)


def test_an_action_seen_before_its_priorities_reaches_nobody_until_they_arrive() -> None:
    graph = full_graph()
    early = replace(graph, priority_insights={}, insights={}, conversations={})
    assert recipients(early, "in_progress") == []
    halfway = replace(graph, priority_insights={P1: (I1,)}, insights={})
    assert recipients(halfway, "in_progress") == []
    assert [r.participant_id for r in recipients(replace(graph, priority_insights={P1: (I1,)}),
                                                 "in_progress")] == ["p_amina001", "p_bilal002"]


def test_withdrawn_erased_or_unknown_people_are_not_told() -> None:
    graph = full_graph()
    withdrawn = replace(graph, participants={"p_amina001": person("p_amina001", "none"),
                                             "p_bilal002": person("p_bilal002", erased=True)})
    assert recipients(withdrawn, "in_progress") == []
    assert recipients(replace(graph, participants={}), "in_progress") == []


def test_an_action_is_told_about_from_the_configured_status_on() -> None:
    assert recipients(full_graph("planned"), "in_progress") == []
    assert len(recipients(full_graph("done"), "in_progress")) == 2
    assert recipients(full_graph("in_progress"), "done") == []
    assert len(recipients(full_graph("planned"), "planned")) == 2
