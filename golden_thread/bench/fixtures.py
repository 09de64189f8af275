"""What the benchmark writes: real contract drafts, their JSON bodies, HTTP requests, raw payloads."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from contracts.drafts import EventDraft
from golden_thread.audit.benchgen import templates
from golden_thread.demo.scenario import conversation_request, people

SOURCE = "intake"


class Drafts:
    """ConversationLogged drafts from intake, each with its own ids; validated as the service does."""

    def __init__(self, seed: int = 11) -> None:
        self._template = templates()["ConversationLogged"]
        self._rng = random.Random(seed)
        self._ready: list[EventDraft[Any]] = []

    def body(self) -> dict[str, Any]:
        body = copy.deepcopy(self._template)
        cid = str(uuid4())
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        body.update(id=str(uuid4()), subject=cid, time=now, recordedtime=now, subjectversion=1,
                    correlationid=str(uuid4()))
        body["data"]["conversation_id"] = cid
        return body

    def make(self) -> EventDraft[Any]:
        return EventDraft.model_validate(self.body())

    def prepare(self, count: int) -> None:
        """Build drafts ahead of a timed section, so the timing holds only the append."""
        self._ready.extend(self.make() for _ in range(count))

    def take(self, count: int = 1) -> list[EventDraft[Any]]:
        out = self._ready[-count:] if len(self._ready) >= count else []
        if out:
            del self._ready[-count:]
        while len(out) < count:
            out.append(self.make())
        return out

    def body_json(self) -> str:
        """One envelope body as the store keeps it (about 1.4 kB)."""
        return json.dumps(self.make().model_dump(mode="json"), separators=(",", ":"))


def raw_payload(size: int = 400) -> bytes:
    """A JSON document of about `size` bytes, the shape of a small event."""
    doc: dict[str, Any] = {"id": str(uuid4()), "type": "BenchEvent", "source": "bench",
                           "subject": str(uuid4()), "time": datetime.now(UTC).isoformat(),
                           "data": {"text": ""}}
    base = len(json.dumps(doc, separators=(",", ":")))
    doc["data"]["text"] = "x" * max(0, size - base)
    return json.dumps(doc, separators=(",", ":")).encode()


def conversation_bodies(count: int, seed: int = 5) -> Iterator[tuple[str, bytes]]:
    """(listener id, POST /conversations body) as the demo's listeners send them, each for a new
    participant (with contact details, so a key is made and the contact sealed)."""
    rng = random.Random(seed)
    crowd = people(rng, 512)
    today = datetime.now(UTC).date()
    for n in range(count):
        person = crowd[n % len(crowd)]
        body = conversation_request(rng, person, today)
        yield body["listener_id"], json.dumps(body, separators=(",", ":")).encode()
