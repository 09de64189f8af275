"""A fast generator of large, valid histories for the replay benchmark.

Each event type's template is dumped once through the contracts (from `scenario`), so its
shape is the canonical one; generation only swaps ids, times and codes (in the same formats)
and chains the hash with `contracts.chain.chain_hash`, byte-exact with what the stores compute.
A unit test checks a sample against `contracts.verify_chain`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time as clock
from collections.abc import Sequence
from typing import Any, BinaryIO
from uuid import UUID

from contracts.chain import GENESIS_HASH, chain_hash
from contracts.envelope import CHAIN_FIELDS
from golden_thread.audit.scenario import build_story
from golden_thread.audit.synthetic import CATEGORIES, PLACES

Body = dict[str, Any]
START = 1_735_722_000  # 2025-01-01T09:00:00Z
GROUPS = ("Bangladeshi", "White British", "Black Caribbean", "Somali", "Polish")


def templates() -> dict[str, Body]:
    """One canonical body (no chain fields) of each event type."""
    found: dict[str, Body] = {}
    for event in build_story(3, 12).events:
        if event.type not in found:
            found[event.type] = event.model_dump(mode="json", exclude=set(CHAIN_FIELDS))
    return found


class Writer:
    """Chains each source's events and writes them, shuffled within small windows."""

    def __init__(self, out: BinaryIO, rng: random.Random, window: int) -> None:
        self.out, self.rng, self.window = out, rng, window
        self.heads: dict[str, tuple[int, str]] = {}
        self.pending: list[bytes] = []
        self.count = 0

    def emit(self, body: Body) -> None:
        sequence, prevhash = self.heads.get(body["source"], (0, GENESIS_HASH))
        sequence += 1
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode("utf-8")).digest()
        new_hash = chain_hash(prevhash, sequence, digest)
        self.heads[body["source"]] = (sequence, new_hash)
        envelope = {**body, "sequence": sequence, "prevhash": prevhash, "hash": new_hash}
        self.pending.append(json.dumps(envelope, separators=(",", ":"),
                                       ensure_ascii=False).encode("utf-8") + b"\n")
        self.count += 1
        if len(self.pending) >= self.window:
            self.flush()

    def flush(self) -> None:
        self.rng.shuffle(self.pending)  # partitions interleave: order is kept only per source
        self.out.writelines(self.pending)
        self.pending.clear()


def generate_history(out: BinaryIO, events: int, *, rng: random.Random, window: int = 64) -> int:
    """Write at least `events` events (whole rounds of the story), return how many."""
    gen = _Generator(templates(), rng, Writer(out, rng, window))
    while gen.writer.count < events:
        gen.round(min(100, max(events - gen.writer.count, 10)))
    gen.writer.flush()
    return gen.writer.count


class _Generator:
    def __init__(self, tpl: dict[str, Body], rng: random.Random, writer: Writer) -> None:
        self.tpl, self.rng, self.writer = tpl, rng, writer
        self.now = START

    def uuid(self) -> str:
        return str(UUID(int=self.rng.getrandbits(128), version=4))

    def body(self, type_name: str, subject: str, causes: Sequence[str], version: int = 1,
             step: int = 600) -> Body:
        self.now += step
        body = copy.deepcopy(self.tpl[type_name])
        stamp = clock.strftime("%Y-%m-%dT%H:%M:%SZ", clock.gmtime(self.now))
        recorded = clock.strftime("%Y-%m-%dT%H:%M:%SZ", clock.gmtime(self.now + 30))
        body.update(id=self.uuid(), subject=subject, time=stamp, recordedtime=recorded,
                    correlationid=self.uuid(), causationids=list(causes), subjectversion=version)
        return body

    def round(self, conversations: int) -> None:
        convs = [self.conversation() for _ in range(conversations)]
        insights = [self.insight(convs[i:i + 5]) for i in range(0, len(convs) - 4, 10)]
        priorities = [self.priority(insights[i:i + 3]) for i in range(0, len(insights) - 2, 5)]
        for priority in priorities:
            action = self.action(priority, "planned", self.uuid(), 1)
            for insight in insights:
                if insight["data"]["insight_id"] in priority["data"]["insight_ids"]:
                    for conv in convs:
                        if conv["data"]["conversation_id"] in insight["data"]["conversation_ids"]:
                            self.notify(action, priority, insight, conv)
            self.action(priority, "done", action["data"]["action_id"], 2)
        self.erase(convs[-1]["data"]["participant_id"])

    def conversation(self) -> Body:
        pid = "p_" + self.uuid().replace("-", "")[:16]
        cid = self.uuid()
        body = self.body("ConversationLogged", cid, [pid], step=300)
        data = body["data"]
        data.update(conversation_id=cid, participant_id=pid, held_on=body["time"][:10],
                    place=self.rng.choice(PLACES), categories=[self.rng.choice(CATEGORIES)])
        data["quotes"][0]["key_id"] = f"k_{pid}_1"
        data["equity"]["ethnicity"] = self.rng.choice(GROUPS)
        self.writer.emit(body)
        return body

    def insight(self, convs: list[Body]) -> Body:
        iid = self.uuid()
        body = self.body("InsightDrafted", iid, [c["id"] for c in convs])
        body["data"].update(insight_id=iid, revision=1, category=convs[0]["data"]["categories"][0],
                            conversation_ids=[c["data"]["conversation_id"] for c in convs])
        self.writer.emit(body)
        return body

    def priority(self, insights: list[Body]) -> Body:
        pid = self.uuid()
        body = self.body("PriorityAgreed", pid, [i["id"] for i in insights], step=86_400)
        body["data"].update(priority_id=pid, session_id=self.uuid(),
                            insight_ids=[i["data"]["insight_id"] for i in insights])
        self.writer.emit(body)
        return body

    def action(self, priority: Body, status: str, action_id: str, version: int) -> Body:
        body = self.body("ActionTaken", action_id, [priority["id"]], version, step=86_400)
        body["data"].update(action_id=action_id, priority_ids=[priority["data"]["priority_id"]],
                            status=status)
        self.writer.emit(body)
        return body

    def notify(self, action: Body, priority: Body, insight: Body, conv: Body) -> None:
        nid = self.uuid()
        body = self.body("ParticipantNotified", nid, [action["id"], conv["id"]])
        body["data"].update(
            notification_id=nid, participant_id=conv["data"]["participant_id"],
            action_id=action["data"]["action_id"], points_answered=conv["data"]["categories"],
            chain={"priority_ids": [priority["data"]["priority_id"]],
                   "insight_ids": [insight["data"]["insight_id"]],
                   "conversation_ids": [conv["data"]["conversation_id"]]})
        self.writer.emit(body)

    def erase(self, participant_id: str) -> None:
        body = self.body("ParticipantErased", participant_id, [])
        body["data"].update(participant_id=participant_id, erased_on=body["time"][:10])
        self.writer.emit(body)
