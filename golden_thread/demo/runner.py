"""`golden-thread demo`: the embedded stack, each service as its own process, a generated
scenario driven over HTTP, and the story read back from the broker."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from contracts.chain import verify_chain
from contracts.topics import ALL_TOPICS, CONVERSATIONS, PARTICIPANTS
from eventcore.embedded import EmbeddedStack
from eventcore.settings import CoreSettings
from golden_thread.demo.processes import ServiceProcess, start_service
from golden_thread.demo.scenario import Person, conversation_request, people
from golden_thread.observe import read_topics
from services.intake.adapters.vault import new_master_key

SERVICES = ("intake",)


async def run_demo(*, conversations: int, json_path: Path | None, seed: int) -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="golden-thread-demo-"))
    print(f"Starting the embedded stack (work dir {work}) ...", flush=True)
    try:
        async with EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=work / "stack") as ep:
            env = {**ep.as_env(), "GT_INTAKE_VAULT_MASTER_KEY": new_master_key(),
                   "GT_RELAY_POLL_INTERVAL_S": "0.2"}
            procs = {name: start_service(name, env, work) for name in SERVICES}
            try:
                await asyncio.gather(*(p.wait_ready() for p in procs.values()))
                print(f"Services up: {', '.join(f'{p.name} ({p.url})' for p in procs.values())}")
                summary = await _drive(procs, ep.kafka_bootstrap_servers, conversations, seed)
            finally:
                codes = {name: p.stop() for name, p in procs.items()}
        summary["service_exit_codes"] = codes
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary["seconds"] = round(time.monotonic() - started, 1)
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        print(f"Summary written to {json_path}")
    return 0 if summary["verified"] else 1


async def _drive(
    procs: dict[str, ServiceProcess], bootstrap: str, count: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    crowd = people(rng, max(1, count * 2 // 3))
    today = datetime.now(UTC).date()
    intake = procs["intake"].url
    accepted = 0
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(count):
            person: Person = rng.choice(crowd)
            answer = await client.post(f"{intake}/conversations",
                                       json=conversation_request(rng, person, today))
            answer.raise_for_status()
            person.participant_id = answer.json()["participant_id"]
            accepted += 1
    print(f"Heard {accepted} conversations from {sum(1 for p in crowd if p.participant_id)} people.")
    events = await read_topics(
        bootstrap, [CONVERSATIONS, PARTICIPANTS],
        until=lambda c: c["ConversationLogged"] >= accepted, timeout_s=60,
    )
    counts = Counter(e.type for e in events)
    broken = verify_chain(sorted(events, key=lambda e: (e.source, e.sequence)))
    _tell_story(events, broken)
    return {
        "counts": dict(counts),
        "complete_chains": 0,  # the insight, priority and feedback services complete the thread
        "participants_told": 0,
        "conversations_accepted": accepted,
        "verified": broken is None and counts["ConversationLogged"] == accepted,
        "first_break": None if broken is None else str(broken),
    }


def _tell_story(events: list[Any], broken: object) -> None:
    heard = [e for e in events if e.type == "ConversationLogged"]
    by_category = Counter(c for e in heard for c in e.data.categories)
    by_place = Counter(e.data.place for e in heard)
    print("\nWhat was heard")
    for category, n in by_category.most_common():
        print(f"  {n:4d}  {category.replace('_', ' ')}")
    print("Where: " + ", ".join(f"{p} ({n})" for p, n in by_place.most_common()))
    print(f"\nHistory: {len(events)} events; hash chain "
          + ("verified." if broken is None else f"BROKEN: {broken}"))
