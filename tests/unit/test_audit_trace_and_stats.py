"""Tracing the thread and the leaders' figures (pace, equity, flow), from a replayed story."""

from __future__ import annotations

from datetime import timedelta

import pytest

from golden_thread.audit.graph import InfluenceGraph
from golden_thread.audit.scenario import UNHEARD, Story, build_story
from golden_thread.audit.stats import Reach, counts, equity, flow, pace, percentile
from golden_thread.audit.trace import NotInHistory, trace_action, trace_participant
from golden_thread.audit.verify import Replay, ReplayOptions


@pytest.fixture(scope="module")
def story() -> Story:
    return build_story(seed=9, conversations=30)


def graph_of(story: Story, **options: object) -> InfluenceGraph:
    replay = Replay(ReplayOptions(**options))  # type: ignore[arg-type]
    replay.feed_all(e.model_dump_json() for e in story.events)
    assert replay.finish().verified
    return replay.graph


def test_an_action_traces_back_to_its_voices_and_who_was_told(story: Story) -> None:
    action = story.actions[0]
    found = trace_action(graph_of(story), str(action.data.action_id))
    assert found["status"] == "done"  # the latest ActionTaken version
    assert [p["priority_id"] for p in found["priorities"]] == [
        str(p) for p in action.data.priority_ids]
    voices = {c["participant_id"] for p in found["priorities"] for i in p["insights"]
              for c in i["conversations"]}
    told = {n.data.participant_id for n in story.notifications
            if n.data.action_id == action.data.action_id}
    assert {t["participant_id"] for t in found["told"]} == told
    assert told <= voices and found["voices"] == len(voices)


def test_a_participant_traces_forward_to_everything_their_words_reached(story: Story) -> None:
    assert story.erased is not None
    found = trace_participant(graph_of(story), story.erased)
    assert found["erased"] is True
    mine = {str(c.data.conversation_id) for c in story.conversations
            if c.data.participant_id == story.erased}
    assert {c["conversation_id"] for c in found["conversations"]} == mine
    assert found["insights"] and found["priorities"] and found["actions"]
    assert {n["participant_id"] for n in found["notifications"]} == {story.erased}


def test_tracing_at_a_point_in_time_shows_only_what_had_happened(story: Story) -> None:
    action = story.actions[0]
    first_told = min(n.recordedtime for n in story.notifications
                     if n.data.action_id == action.data.action_id)
    before = graph_of(story, as_of=first_told - timedelta(seconds=1))
    assert trace_action(before, str(action.data.action_id))["told"] == []
    with pytest.raises(NotInHistory):
        trace_action(graph_of(story, as_of=action.recordedtime - timedelta(days=30)),
                     str(action.data.action_id))


def test_unknown_ids_are_not_in_the_history(story: Story) -> None:
    g = graph_of(story)
    with pytest.raises(NotInHistory):
        trace_participant(g, "p_nobody00000")
    with pytest.raises(NotInHistory):
        trace_action(g, "not-a-uuid")


def test_pace_gives_median_and_90th_percentile_per_stage(story: Story) -> None:
    stages = {p.stage: p for p in pace(graph_of(story))}
    assert set(stages) >= {"conversation → insight", "insight → priority", "priority → action",
                           "action → person told"}
    for p in stages.values():
        assert p.count > 0 and p.median_days is not None and p.p90_days is not None
        assert 0 <= p.median_days <= p.p90_days
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9) == 9.0


def test_equity_flags_the_group_whose_voices_are_never_cited(story: Story) -> None:
    g = graph_of(story)
    ethnicity = next(t for t in equity(g, Reach.of(g)) if t["dimension"] == "ethnicity")
    rows = {r["group"]: r for r in ethnicity["groups"]}
    assert rows[UNHEARD]["heard"] > 0 and rows[UNHEARD]["cited"] == 0
    assert rows[UNHEARD]["flag"] == "drops out before 'cited'"
    assert rows["erased"]["heard"] == 1  # the erased person's self-description is not used
    shares = [r["heard_share"] for r in ethnicity["groups"]]
    assert abs(sum(shares) - 1) < 0.01


def test_flow_conserves_conversations_along_the_thread(story: Story) -> None:
    g = graph_of(story)
    links = flow(g, Reach.of(g))
    out_of = {a: sum(n for x, _, n in links if x == a) for a, _, _ in links}
    into = {b: sum(n for _, y, n in links if y == b) for _, b, _ in links}
    assert out_of["Conversations"] == len(story.conversations)
    for stage in ("Insights", "Priorities", "Actions"):
        assert into[stage] == out_of[stage]
    assert into["People told"] > 0


def test_counts_by_category_and_place(story: Story) -> None:
    found = counts(graph_of(story))
    assert sum(found["conversations_by_place"].values()) == len(story.conversations)
    assert set(found["conversations_by_category"]) <= {
        "cultural_factors", "community_support", "clinical_and_social_help",
        "continuity_of_care"}
    assert sum(found["insights_by_category"].values()) == len(
        {i.data.insight_id for i in story.insights})
