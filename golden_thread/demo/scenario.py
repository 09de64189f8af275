"""A realistic generated scenario: listeners, places, categories, equity groups, conversations."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

PLACES = ("Tower Hamlets", "Hackney", "Newham", "Lewisham", "Croydon", "Brent")
SETTINGS = ("community café", "phone call", "mosque drop-in", "library event", "football club",
            "carers' group")
SUPPORT = ("talking therapies", "peer support group", "crisis line", "community mental health team",
           "carers' centre", "benefits advice", "recovery college")
AGE_BANDS = ("16-24", "25-34", "35-49", "50-64", "65+")
ETHNICITIES = ("Bangladeshi", "Black Caribbean", "White British", "Somali", "Polish", "Mixed")
GENDERS = ("woman", "man", "non-binary")
FIRST_NAMES = ("Amina", "Kwame", "Joanna", "Farhan", "Siobhan", "Tomasz", "Leila", "Marcus")
SUMMARIES = {
    "cultural_factors": [
        "Felt services did not understand how the family talks about mental health.",
        "Would have accepted help sooner if it had been offered in their own language.",
    ],
    "community_support": [
        "The weekly community group is what keeps them going between appointments.",
        "Peer support made it easier to ask for help without feeling judged.",
    ],
    "clinical_and_social_help": [
        "Waited months for a first appointment and heard nothing in between.",
        "Housing and money worries made the treatment hard to keep up.",
    ],
    "continuity_of_care": [
        "Had to tell their story again to every new worker.",
        "Lost contact with the team after being discharged from hospital.",
    ],
}
QUOTES = ("Nobody called me back.", "I just want one person who knows me.",
          "The group is the only place I feel heard.", "I didn't know that service existed.")


@dataclass
class Person:
    first_name: str
    email: str
    phone: str
    equity: dict[str, str]
    participant_id: str | None = None


def people(rng: random.Random, count: int) -> list[Person]:
    out = []
    for i in range(count):
        name = f"{rng.choice(FIRST_NAMES)}{i}"
        out.append(Person(
            first_name=name,
            email=f"{name.lower()}@example.org",
            phone=f"+44 7700 9{i:05d}",
            equity={"age_band": rng.choice(AGE_BANDS), "ethnicity": rng.choice(ETHNICITIES),
                    "gender": rng.choice(GENDERS), "area": rng.choice(PLACES)},
        ))
    return out


def conversation_request(rng: random.Random, person: Person, today: date) -> dict[str, Any]:
    categories = rng.sample(sorted(SUMMARIES), k=rng.choice((1, 1, 2)))
    wants_feedback = rng.random() < 0.8
    quoted = rng.random() < 0.6
    consent = {
        "to_store": True,
        "to_quote": quoted,
        "to_recontact": wants_feedback,
        "channel": rng.choice(("email", "email", "peer_in_person")) if wants_feedback else "none",
        "earliest_contact_on": None,
    }
    participant: dict[str, Any] = (
        {"id": person.participant_id} if person.participant_id else
        {"contact": {"name": person.first_name, "email": person.email, "phone": person.phone}}
    )
    return {
        "listener_id": f"listener-{rng.randint(1, 6)}",
        "held_on": (today - timedelta(days=rng.randint(0, 60))).isoformat(),
        "setting": rng.choice(SETTINGS),
        "place": person.equity["area"],
        "categories": categories,
        "summary": rng.choice(SUMMARIES[categories[0]]),
        "quotes": [rng.choice(QUOTES)] if quoted else [],
        "support_shared": rng.sample(SUPPORT, k=2),
        "participant": participant,
        "consent": consent,
        "equity": person.equity,
    }
