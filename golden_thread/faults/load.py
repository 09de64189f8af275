"""Steady load over HTTP, as users would drive it: conversations keep arriving, and every few
of them go down the whole thread (an insight cites them, a session agrees a priority, a service
lead records an action, feedback tells everyone).

A request that never reached the service (connection refused) is retried. One whose outcome is
unknown (the service died mid-request, or answered 5xx) is retried only where a retry cannot
write twice; otherwise it is left: the stores say what happened, and expectations follow them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx

from golden_thread.faults.tokens import Bearer

CATEGORY = "continuity_of_care"
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
PARTNERS = ("partner-1", "partner-2", "partner-3")


@dataclass
class Ledger:
    """What the services acknowledged to the load (event ids by service)."""

    acked: dict[str, set[UUID]] = field(
        default_factory=lambda: {"intake": set(), "insight": set(), "priority": set()})
    ambiguous: int = 0
    refused: list[str] = field(default_factory=list)
    threads_done: int = 0
    threads_dropped: int = 0

    @property
    def sent(self) -> int:
        return sum(len(ids) for ids in self.acked.values())


class Load:
    def __init__(self, urls: dict[str, str], bearer: Bearer, tag: str, *, rate_per_s: float = 4.0,
                 per_thread: int = 4, step_timeout_s: float = 60.0) -> None:
        self.urls, self.bearer, self.tag = urls, bearer, tag
        self.rate_per_s, self.per_thread, self.step_timeout_s = rate_per_s, per_thread, step_timeout_s
        self.ledger = Ledger()
        self._threads: list[asyncio.Task[None]] = []
        self._client = httpx.AsyncClient(timeout=20)

    async def run(self, seconds: float) -> Ledger:
        """Log conversations for `seconds`, then wait for every thread already begun."""
        try:
            end, batch, n = time.monotonic() + seconds, [], 0
            while time.monotonic() < end:
                n += 1
                cid = await self._conversation(n)
                if cid is not None:
                    batch.append(cid)
                if len(batch) == self.per_thread:
                    self._threads.append(asyncio.create_task(self._thread(len(self._threads), batch)))
                    batch = []
                await asyncio.sleep(1 / self.rate_per_s)
            await asyncio.gather(*self._threads)
        finally:
            for task in self._threads:
                task.cancel()
            await self._client.aclose()
        return self.ledger

    async def _call(self, method: str, service: str, path: str, role: str, subject: str, *,
                    body: Any = None, retry: bool = False, until: float | None = None
                    ) -> httpx.Response | None:
        """The answer; None when the outcome is unknown and a retry could write twice."""
        deadline = until or time.monotonic() + self.step_timeout_s
        while time.monotonic() < deadline:
            try:
                answer = await self._client.request(
                    method, self.urls[service] + path, json=body,
                    headers=self.bearer.headers(role, subject))
            except NOT_SENT:
                await asyncio.sleep(0.2)
                continue
            except httpx.HTTPError:
                if not retry:
                    self.ledger.ambiguous += 1
                    return None
                await asyncio.sleep(0.2)
                continue
            if answer.status_code >= 500:
                if not retry:
                    self.ledger.ambiguous += 1
                    return None
                await asyncio.sleep(0.2)
                continue
            return answer
        return None

    def _accepted(self, service: str, answer: httpx.Response | None, *ok: int) -> dict[str, Any] | None:
        if answer is None:
            return None
        if answer.status_code not in ok:
            self.ledger.refused.append(f"{answer.request.method} {answer.request.url.path}: "
                                       f"{answer.status_code} {answer.text[:200]}")
            return None
        body: dict[str, Any] = answer.json()
        if body.get("event_id"):
            self.ledger.acked[service].add(UUID(str(body["event_id"])))
        return body

    async def _conversation(self, n: int) -> str | None:
        body = {
            "listener_id": "listener-1", "held_on": datetime.now(UTC).date().isoformat(),
            "setting": f"fault lab {self.tag} #{n}", "place": "Hackney", "categories": [CATEGORY],
            "summary": "Had to tell their story again to every new worker.",
            "quotes": [], "support_shared": ["peer support group"],
            "participant": {"contact": {"name": f"Lab{n}", "email": f"lab-{self.tag}-{n}@example.org"}},
            "consent": {"to_store": True, "to_quote": False, "to_recontact": True,
                        "channel": "email", "earliest_contact_on": None},
        }
        answer = await self._call("POST", "intake", "/conversations", "community_listener",
                                  "listener-1", body=body)
        accepted = self._accepted("intake", answer, 201)
        return None if accepted is None else str(accepted["id"])

    async def _thread(self, g: int, cids: list[str]) -> None:
        done = await self._down_the_thread(g, cids)
        if done:
            self.ledger.threads_done += 1
        else:
            self.ledger.threads_dropped += 1

    async def _down_the_thread(self, g: int, cids: list[str]) -> bool:
        until = time.monotonic() + self.step_timeout_s
        for cid in cids:  # partners can read them: insight has consumed them
            while True:
                seen = await self._call("GET", "insight", f"/conversations/{cid}",
                                        "lived_experience_partner", "partner-1", retry=True,
                                        until=until)
                if seen is None or time.monotonic() > until:
                    return False
                if seen.status_code == 200:
                    break
                await asyncio.sleep(0.2)
        statement = f"People want one worker who knows them (fault lab {self.tag}, thread {g})."
        insight = self._accepted("insight", await self._call(
            "POST", "insight", "/insights", "lived_experience_partner", "partner-1",
            body={"partner_id": "partner-1", "statement": statement, "category": CATEGORY,
                  "conversation_ids": cids}), 201)
        if insight is None:
            return False
        session = await self._open_session(str(insight["id"]), statement)
        if session is None:
            return False
        priority_id = await self._agree(session)
        return priority_id is not None and await self._act(g, priority_id)

    async def _open_session(self, insight_id: str, statement: str) -> str | None:
        until = time.monotonic() + self.step_timeout_s
        while time.monotonic() < until:  # 422 until priority has consumed the insight
            answer = await self._call("POST", "priority", "/sessions", "lived_experience_partner",
                                      "facilitator-1", body={"opened_by": "facilitator-1",
                                      "insight_ids": [insight_id], "statement": statement},
                                      until=until)
            if answer is None or answer.status_code not in (201, 422):
                self._accepted("priority", answer, 201)
                return None
            if answer.status_code == 201:
                return str(answer.json()["session_id"])
            await asyncio.sleep(0.3)
        return None

    async def _agree(self, session_id: str) -> str | None:
        for partner in PARTNERS:
            answer = await self._call("POST", "priority", f"/sessions/{session_id}/responses",
                                      "lived_experience_partner", partner, retry=True,
                                      body={"partner_id": partner, "response": "support"})
            if self._accepted("priority", answer, 200) is None:
                return None
        decided = self._accepted("priority", await self._call(
            "POST", "priority", f"/sessions/{session_id}/decision", "lived_experience_partner",
            "facilitator-1", body={"decided_by": "facilitator-1"}), 200)
        if decided is None:  # unknown outcome: the session says whether it was agreed
            read = await self._call("GET", "priority", f"/sessions/{session_id}",
                                    "lived_experience_partner", "facilitator-1", retry=True)
            decided = None if read is None or read.status_code != 200 else read.json()
        return None if decided is None or not decided.get("priority_id") else str(decided["priority_id"])

    async def _act(self, g: int, priority_id: str) -> bool:
        body = {"recorded_by": "lead-1", "priority_ids": [priority_id],
                "description": f"Each person now has a named key worker ({self.tag}, {g}).",
                "service": "community mental health team", "place": "Hackney",
                "framework": "Community Mental Health Framework",
                "framework_area": "Continuity of care", "status": "in_progress"}
        # A retry cannot record it twice: the same action again is refused as a duplicate.
        answer = await self._call("POST", "priority", "/actions", "service_lead", "lead-1",
                                  body=body, retry=True)
        if answer is not None and answer.status_code == 409:
            return True
        return self._accepted("priority", answer, 201) is not None
