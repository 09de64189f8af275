"""A whole story of change as one history: voices, insights, priorities, actions, people told,
a consent change and an erasure. One group's voices are never cited, so equity shows a drop-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts import EquityProfile
from contracts.envelope import Envelope
from golden_thread.audit.synthetic import CATEGORIES, PLACES, HistoryBuilder

Event = Envelope[Any]
ETHNICITIES = ("Bangladeshi", "White British", "Black Caribbean", "Somali")
#: The group whose conversations no insight cites in this story.
UNHEARD = "Somali"


@dataclass
class Story:
    events: list[Event]
    participants: list[str]
    conversations: list[Event]
    insights: list[Event]
    priorities: list[Event]
    actions: list[Event]
    notifications: list[Event] = field(default_factory=list)
    erased: str | None = None


def build_story(seed: int = 1, conversations: int = 16, *, source_prefix: str = "",
                erase: bool = True) -> Story:
    b = HistoryBuilder(seed, source_prefix=source_prefix)
    people = [b.participant_id() for _ in range(max(2, conversations * 3 // 4))]
    profiles = {p: _profile(i) for i, p in enumerate(people)}
    convs = [
        b.conversation(people[i % len(people)], equity=profiles[people[i % len(people)]],
                       place=PLACES[i % len(PLACES)],
                       categories=CATEGORIES[i % 4: i % 4 + 1 + (i % 3 == 0 and i % 4 < 3)],
                       recontact=i % 5 != 4, returning=i >= len(people))
        for i in range(conversations)
    ]
    citable = [c for c in convs if profiles[c.data.participant_id].ethnicity != UNHEARD]
    insights = [b.insight(chunk, chunk[0].data.categories[0])
                for chunk in _chunks(citable, 3)]
    if insights and len(citable) > 3:  # a revision that cites one more conversation
        first = insights[0]
        cited = [c for c in citable if c.data.conversation_id in first.data.conversation_ids]
        insights[0] = b.insight([*cited, citable[3]], first.data.category,
                                insight_id=first.data.insight_id, revision=2)
    priorities = [b.priority(pair) for pair in _chunks(insights, 2) if len(pair) == 2]
    actions = [b.action([p]) for p in priorities[:-1] or priorities]
    if actions:
        actions[0] = b.action(_priorities_of(actions[0], priorities), status="done",
                              action_id=actions[0].data.action_id, version=2, place="Newham")
    story = Story(b.events, people, convs, insights, priorities, actions)
    for action in actions:
        story.notifications.extend(_tell(b, story, action))
    if erase and story.notifications:
        story.erased = story.notifications[0].data.participant_id
        b.erase(story.erased, version=1)
    changed = next((p for p in reversed(people) if p != story.erased), None)
    if changed is not None:
        b.change_consent(changed, version=1)
    return story


def _tell(b: HistoryBuilder, story: Story, action: Event) -> list[Event]:
    """Everyone whose words fed the action and who asked to hear back is told."""
    priorities = _priorities_of(action, story.priorities)
    wanted = {i for p in priorities for i in p.data.insight_ids}
    insights = [i for i in story.insights if i.data.insight_id in wanted]
    cited = {c for i in insights for c in i.data.conversation_ids}
    behind = [c for c in story.conversations if c.data.conversation_id in cited]
    told: list[Event] = []
    for person in dict.fromkeys(c.data.participant_id for c in behind):
        theirs = [c for c in behind if c.data.participant_id == person]
        if theirs[-1].data.consent.to_recontact:
            told.append(b.notify(person, action, priorities, insights, theirs))
    return told


def _priorities_of(action: Event, priorities: Sequence[Event]) -> list[Event]:
    return [p for p in priorities if p.data.priority_id in action.data.priority_ids]


def _profile(index: int) -> EquityProfile:
    return EquityProfile(age_band=("16-24", "25-34", "35-49", "50-64")[index % 4],
                         ethnicity=ETHNICITIES[index % len(ETHNICITIES)],
                         gender=("woman", "man", "non-binary")[index % 3],
                         area=PLACES[index % len(PLACES)])


def _chunks(items: Sequence[Event], size: int) -> list[list[Event]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]
