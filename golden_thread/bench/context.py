"""The plan of a bench run and the context its phases share."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from eventcore.embedded import StackEndpoints
from golden_thread.bench.infra import (
    CpuMeter,
    Processes,
)
from golden_thread.bench.report import Report
from golden_thread.demo.processes import ServiceProcess

#: Most rounds a short consumer figure is taken in (`Plan.pipeline_rounds`).
MAX_PIPELINE_ROUNDS = 5
#: Most end-to-end rounds (`Plan.e2e_rounds`).
MAX_E2E_ROUNDS = 9
#: The consumer groups the bench's own workers use (their dead-letter topics are made up front):
#: `-xN` runs N instances, `-rN` is round N of a figure taken in rounds.
BENCH_CONSUMERS = ("insight-x2", "priority-x1", "feedback-x1",
                   *(f"{service}-r{n}" for service in ("insight", "priority")
                     for n in range(2, MAX_PIPELINE_ROUNDS + 1)))


@dataclass(frozen=True)
class Plan:
    mode: str
    db_seconds: float
    kafka_messages: int
    intake_seconds: float
    intake_warmup_s: float
    intake_clients: int
    e2e_seconds: float
    history_events: int
    replay_events: int
    timeout_s: float
    #: A consumer pipeline is timed over at most this many events of its backlog.
    pipeline_cap: int = 1_000_000
    #: Conversations published for the scale-out phase on top of intake's backlog, so that the
    #: second instance's group join (~5 s on Tansu) is not most of the run.
    scaleout_events: int = 0
    #: Scan and replay are each run this many times, in turn; the faster run of each counts.
    replay_rounds: int = 1
    #: Rounds of the database phase (raw PostgreSQL, store, peer, in turn); medians reported,
    #: as the issue's reference figures are: one round moved the peer's figures by ±25 %.
    db_rounds: int = 1
    #: Rounds of the short consumer figures (priority: 6,804 events, under a second; insight:
    #: intake's backlog, ≈ 2 s), each in a consumer group of its own (insight's first is its
    #: real group on intake's database, the others fresh databases); the median is reported.
    #: One round moved them by a quarter between runs of the same code.
    pipeline_rounds: int = 1
    #: Paced end-to-end runs of `e2e_seconds`, each followed by its raw probe; the round whose
    #: ratio is the median is reported. One run's p99 ratio moved from 1.5 to 4.1 for the same
    #: code (finding 61). Their record batches stay in the conversations topic, and Tansu serves
    #: every later phase slower for them (finding 63): three rounds of 5 s write what one of
    #: 15 s did.
    e2e_rounds: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.pipeline_rounds <= MAX_PIPELINE_ROUNDS:
            raise ValueError(f"pipeline_rounds: must be 1 to {MAX_PIPELINE_ROUNDS}")
        if not 1 <= self.e2e_rounds <= MAX_E2E_ROUNDS:
            raise ValueError(f"e2e_rounds: must be 1 to {MAX_E2E_ROUNDS}")

    @classmethod
    def quick(cls) -> Plan:
        return cls("quick", db_seconds=0.25, kafka_messages=3_000, intake_seconds=1.5,
                   intake_warmup_s=0.3, intake_clients=8, e2e_seconds=2.0, history_events=200,
                   replay_events=5_000, timeout_s=60)

    @classmethod
    def full(cls) -> Plan:
        return cls("full", db_seconds=3.0, kafka_messages=50_000, intake_seconds=15.0,
                   intake_warmup_s=2.0, intake_clients=8, e2e_seconds=5.0,
                   history_events=100_000, replay_events=1_000_000, timeout_s=600,
                   scaleout_events=60_000, replay_rounds=2, db_rounds=3, pipeline_rounds=3,
                   e2e_rounds=3)


@dataclass
class Context:
    plan: Plan
    report: Report
    endpoints: StackEndpoints
    work: Path
    system_url: str = ""
    intake_url: str = ""
    intake_peak: float = 0.0
    procs: Processes | None = None
    auth_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    pids: dict[str, int | None] = field(default_factory=dict)
    intake_proc: ServiceProcess | None = None
    #: Events the phases put on the services' topics besides intake's and the history's.
    extra_published: int = 0

    def cpu_meter(self, **more: int | None) -> CpuMeter:
        """CPU per item of the broker, PostgreSQL (all backends), the bench itself and `more`."""
        return CpuMeter({**self.pids, "bench client": os.getpid(), **more},
                        recursive=frozenset({"postgres"}))


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)
