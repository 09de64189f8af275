"""The fault scenarios, shared by `golden-thread faults` and tests/reliability.

Processes die by kill -9 at failpoints (eventcore.failpoints), armed through each process's
failpoints file and disarmed by the supervisor once a process has used up its kills.
"""

from __future__ import annotations

import asyncio
import random
import time

from contracts.topics import CONVERSATIONS, PARTICIPANTS, PUBLIC_TOPICS
from golden_thread.faults import kafka
from golden_thread.faults.fleet import SERVICES
from golden_thread.faults.runner import Scenario, Step, Trial, nothing
from services.feedback.config import UPSTREAM_TOPICS

CONSUMING = ("insight", "priority", "feedback")  # intake consumes nothing
RELAY_POINTS = ("relay.before_publish", "relay.after_ack")
CONSUMER_POINTS = ("consumer.handler", "consumer.before_offset_commit")
SLOW_POLL_MS = 2500


def _arm(trial: Trial, services: tuple[str, ...], spec: str, kills: int = 1) -> None:
    for name in services:
        trial.lab.services[name].arm(spec, kills)
    trial.notes.append(f"armed {spec} in {', '.join(services)}")


async def _note_kills(trial: Trial, services: tuple[str, ...], *, expect: int = 0,
                      within_s: float = 0.0) -> None:
    """Wait for the load to end (and then up to `within_s` more for `expect` kills: the armed
    point may be reached only by messages still being consumed), then say who actually died (a
    point may not have been hit)."""
    assert trial.load is not None
    await asyncio.wait([trial.load])
    fleet = trial.lab.services
    deadline = time.monotonic() + within_s
    while sum(fleet[n].killed for n in services) < expect and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    killed = {n: fleet[n].killed for n in services if fleet[n].killed}
    trial.notes.append(f"killed (kill -9): {killed or 'nobody'}")
    trial.kills = sum(killed.values())


def _killing(services: tuple[str, ...], spec: str, kills: int = 1, at: float = 0.0) -> Scenario:
    async def fault(trial: Trial) -> None:
        for name in services:
            trial.lab.services[name].killed = 0
        await trial.during_load(at)
        _arm(trial, services, spec, kills)
        await _note_kills(trial, services)

    return Scenario("", fault)


async def random_moments(trial: Trial) -> None:
    """Each service dies `plan.kills_each` times, each at a random moment of the load, at the
    next pass through a randomly chosen failpoint of its own (seeded; the seed is noted)."""
    seed = random.randrange(1_000_000)
    rng, fleet = random.Random(seed), trial.lab.services
    moments = sorted((rng.uniform(0.05, 0.75) * trial.plan.load_s, name,
                      rng.choice(RELAY_POINTS + (CONSUMER_POINTS if name in CONSUMING else ())))
                     for name in SERVICES for _ in range(trial.plan.kills_each))
    trial.notes.append(f"seed {seed}: " + ", ".join(f"{n} at {p} after {t:.1f}s"
                                                    for t, n, p in moments))
    for name in SERVICES:
        fleet[name].killed = 0
    started = time.monotonic()
    for at, name, point in moments:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        assert trial.load is not None
        while not fleet[name].alive() or fleet[name].kills_left > 0:  # one kill at a time
            if trial.load.done():
                break
            await asyncio.sleep(0.1)
        else:
            fleet[name].arm(f"{point}:1", kills=1)
    await _note_kills(trial, SERVICES)


async def postgres_restart(trial: Trial) -> None:
    await trial.during_load(0.3)
    for name in CONSUMING:  # consumers hold transactions open when the database goes away
        trial.lab.services[name].arm("consumer.handler:1.0:sleep=1.0", kills=0)
    await asyncio.sleep(0.5)
    await trial.lab.stack.stop_database()
    await asyncio.sleep(1.5)  # a real outage, not a blink: every pool loses its connections
    await trial.lab.stack.start_database()
    trial.disturbed()
    trial.lab.services.disarm_all()
    trial.notes.append("PostgreSQL stopped (fast shutdown) for 1.5 s, with consumers' "
                       "transactions in flight, and started again")


async def broker_restart(trial: Trial) -> None:
    await trial.during_load(0.3)
    await trial.lab.stack.restart_broker()
    trial.disturbed()
    trial.notes.append("broker killed and restarted empty: topics, messages and committed "
                       "offsets lost; relays re-publish from their stores")


async def second_insight(trial: Trial) -> None:
    second = trial.lab.services.add(
        "insight", name="insight#2", entry="golden_thread.faults.serve",
        extra_env={"GT_FAULTS_MAX_POLL_INTERVAL_MS": str(SLOW_POLL_MS)})
    await second.wait_ready()
    await asyncio.sleep(3.0)  # the group rebalances onto both instances
    trial.lab.services["insight"].killed = 0


async def kill_one_of_two(trial: Trial) -> None:
    await trial.during_load(0.1)
    # Dies holding a fetched batch, at its second handler: a batch runs a handler once per run
    # of one event type, so a few conversations can come in as few as two or three batches (at
    # the fourth it was sometimes never reached, and nobody died).
    _arm(trial, ("insight",), "consumer.handler:2")
    trial.lab.services["insight#2"].arm(f"consumer.handler:3:sleep={SLOW_POLL_MS / 1000 + 1.5}")
    trial.notes.append(f"insight#2: one handler stalls {SLOW_POLL_MS / 1000 + 1.5}s with "
                       f"max_poll_interval_ms={SLOW_POLL_MS}")
    # The first instance may reach its 2nd handler only after the load: once the stalled one
    # has left the group and its partitions came over (a rebalance takes ~5 s on Tansu).
    await _note_kills(trial, ("insight",), expect=1, within_s=25.0)


async def back_to_one(trial: Trial) -> None:
    second = trial.lab.services["insight#2"]
    await trial.lab.services.remove("insight#2")
    trial.disturbed()
    refused = second.log_path.read_text(errors="replace").count("CommitFailedError(")
    trial.notes.append(f"insight#2: {refused} offset commit(s) refused after the slow handler "
                       "(the group had moved on; the message went to another member)")


async def poison(trial: Trial) -> None:
    await trial.during_load(0.2)
    rows = await trial.lab.fetch(
        "SELECT body::jsonb || jsonb_build_object('sequence', sequence, 'prevhash',"
        " encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex')) AS envelope FROM intake.events"
        " WHERE event_type = 'ConversationLogged' ORDER BY sequence DESC LIMIT 1")
    sent = [kafka.poison_from(rows[0]["envelope"], CONVERSATIONS), kafka.garbage()]
    for _, key, value, headers in sent:
        await kafka.publish(trial.lab.bootstrap, CONVERSATIONS, key, value, headers)
    trial.poison = {"poison": sent[0][0], "garbage": sent[1][0]}
    trial.poisoned_at = time.monotonic()
    trial.notes.append("published a ConversationLogged insight cannot store, and a non-event")


async def poison_checked(trial: Trial) -> None:
    """Dead letters carry the original headers and the error; lag returns to zero."""
    bootstrap, want = trial.lab.bootstrap, trial.poison
    expect = {"insight": {want["poison"]: "3", want["garbage"]: "1"},
              "feedback": {want["garbage"]: "1"}}
    deadline = time.monotonic() + trial.plan.settle_timeout_s
    for consumer, attempts in expect.items():
        while True:
            letters = {kafka.headers_of(r).get("ce_id", b"").decode(): kafka.headers_of(r)
                       for r in await kafka.dead_letters(bootstrap, consumer)}
            if set(attempts) <= set(letters) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        for ce_id, tries in attempts.items():
            trial.checks += _dead_letter_problems(consumer, ce_id, letters.get(ce_id), tries)
    groups = {"insight": [CONVERSATIONS, PARTICIPANTS], "feedback": list(UPSTREAM_TOPICS)}
    for group, topics in groups.items():
        while (behind := await kafka.lag(bootstrap, group, topics)) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        if behind:
            trial.checks.append(f"{group}: lag stayed at {behind}")
    trial.notes.append(f"dead letters checked; consumer lag back to zero "
                       f"{time.monotonic() - trial.poisoned_at:.1f}s after the poison was sent")


def _dead_letter_problems(consumer: str, ce_id: str, headers: dict[str, bytes] | None,
                          attempts: str) -> list[str]:
    if headers is None:
        return [f"{consumer}: {ce_id} not on its dead-letter topic"]
    problems = []
    if headers.get(kafka.POISON_HEADER) is None or headers.get("ce_type") is None:
        problems.append(f"{consumer}: dead letter {ce_id} lost its original headers")
    if not headers.get("dlq_reason"):
        problems.append(f"{consumer}: dead letter {ce_id} does not say why")
    if headers.get("dlq_attempts", b"").decode() != attempts:
        problems.append(f"{consumer}: {ce_id} dead-lettered after "
                        f"{headers.get('dlq_attempts', b'?').decode()} attempts, not {attempts}")
    return problems


async def count_repeats(trial: Trial) -> None:
    found = await kafka.repeats(trial.lab.bootstrap, list(PUBLIC_TOPICS))
    trial.notes.append(f"the broker holds {found} repeated copies of events, for the inboxes "
                       "to absorb")


def _named(name: str, scenario: Scenario, aftercare: Step = nothing) -> Scenario:
    return Scenario(name, scenario.fault, scenario.prepare, aftercare)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("baseline", nothing),
    _named("kill_after_commit_before_publish", _killing(SERVICES, "relay.before_publish:2")),
    _named("kill_relay_after_ack", _killing(SERVICES, "relay.after_ack:2"), count_repeats),
    _named("kill_consumer_before_offset_commit",
           _killing(CONSUMING, "consumer.before_offset_commit:3")),
    Scenario("kill_random_moments", random_moments),
    Scenario("postgres_restart", postgres_restart),
    Scenario("broker_restart", broker_restart, nothing, count_repeats),
    Scenario("rebalance_and_slow_handler", kill_one_of_two, second_insight, back_to_one),
    Scenario("poison_message", poison, nothing, poison_checked),
)}
