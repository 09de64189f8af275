"""`golden-thread demo`: the embedded stack, each service as its own process, a generated
scenario driven over HTTP (listening, insight, co-production, action, feedback), and the story
read back from the broker and verified."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from contracts.events.notification import ParticipantNotified
from contracts.topics import ALL_TOPICS, NOTIFICATIONS
from eventcore.embedded import EmbeddedStack
from eventcore.settings import CoreSettings
from golden_thread.audit.run import HistorySource, replay_history
from golden_thread.audit.trace import trace_action
from golden_thread.audit.verify import ReplayOptions
from golden_thread.demo import thread
from golden_thread.demo.mailbox import MailServer
from golden_thread.demo.processes import ServiceProcess, start_service
from golden_thread.demo.story import tell
from golden_thread.observe import read_topics
from services.intake.adapters.vault import new_master_key

ORDER = ("intake", "insight", "priority", "feedback")


def _environment(stack_env: dict[str, str], mail_port: int, auth_secret: str) -> dict[str, str]:
    # Every service verifies bearer tokens with this key; feedback mints its own machine token
    # (role system, subject feedback) from it to read contact details from intake.
    return {
        **stack_env,
        "GT_RELAY_POLL_INTERVAL_S": "0.2",
        "GT_INTAKE_VAULT_MASTER_KEY": new_master_key(),
        "GT_AUTH_JWT_SECRET": auth_secret,
        "GT_FEEDBACK_SMTP_HOST": "127.0.0.1",
        "GT_FEEDBACK_SMTP_PORT": str(mail_port),
        "GT_FEEDBACK_SCHEDULER_INTERVAL_S": "0.5",
    }


async def run_demo(*, conversations: int, json_path: Path | None, seed: int) -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="golden-thread-demo-"))
    print(f"Starting the embedded stack (work dir {work}) ...", flush=True)
    procs: dict[str, ServiceProcess] = {}
    try:
        with MailServer() as mail:
            async with EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=work / "stack") as ep:
                auth_secret = secrets.token_urlsafe(32)
                env = _environment(ep.as_env(), mail.port, auth_secret)
                procs["intake"] = start_service("intake", env, work)
                await procs["intake"].wait_ready()
                env["GT_FEEDBACK_INTAKE_URL"] = procs["intake"].url
                for name in ORDER[1:]:
                    procs[name] = start_service(name, env, work)
                await asyncio.gather(*(p.wait_ready() for p in procs.values()))
                print("Services up: " + ", ".join(f"{p.name} ({p.url})" for p in procs.values()))
                summary = await _drive({n: p.url for n, p in procs.items()},
                                       ep.kafka_bootstrap_servers, conversations, seed, mail,
                                       thread.Badges(auth_secret))
                summary["service_exit_codes"] = {n: p.stop() for n, p in procs.items()}
    except BaseException:
        for name, proc in procs.items():
            proc.stop()
            print(f"--- last lines of the {name} log ---")
            print("\n".join(proc.log_path.read_text(errors="replace").splitlines()[-15:]))
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary["seconds"] = round(time.monotonic() - started, 1)
    clean = all(code == 0 for code in summary["service_exit_codes"].values())
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        print(f"Summary written to {json_path}")
    print(f"Done in {summary['seconds']} s.")
    ok = summary["verified"] and summary["complete"] and summary["traces_match"] and clean
    return 0 if ok else 1


async def _drive(urls: dict[str, str], bootstrap: str, count: int, seed: int,
                 mail: MailServer, badge: thread.Badges) -> dict[str, Any]:
    rng = random.Random(seed)
    record = thread.ThreadRecord()
    async with httpx.AsyncClient(timeout=30) as client:
        crowd = await thread.listen(client, urls, badge, count, rng, record)
        await thread.forget_and_withdraw(client, urls, badge, crowd, rng, record)
        print(f"Heard {len(record.conversations)} conversations from "
              f"{sum(1 for p in crowd if p.participant_id)} people.")
        await thread.draft_insights(client, urls, badge, rng, record)
        await thread.agree_priorities(client, urls, badge, rng, record)
        await thread.fail_one_session(client, urls, badge, record)
        await thread.take_actions(client, urls, badge, record)
        due, held, in_person = thread.expected_notifications(record, datetime.now(UTC).date())
        visited = await thread.visit_in_person(client, urls, badge, in_person)
    notified = await read_topics(bootstrap, [NOTIFICATIONS],
                                 until=lambda c: c["ParticipantNotified"] >= len(due), timeout_s=90)
    replayed, verification = await replay_history(HistorySource(bootstrap=bootstrap),
                                                  ReplayOptions(), quiet=True)
    traces = [trace_action(replayed.graph, action_id) for action_id in record.actions]
    told = {(str(n.data.participant_id), str(n.data.action_id)) for n in notified
            if isinstance(n.data, ParticipantNotified)}
    complete = sum(_complete_chains(t) for t in traces)
    summary = {
        "counts": verification.counts_by_type,
        "complete_chains": complete,
        "participants_told": len({pid for pid, _ in told}),
        "notifications_expected": len(due),
        "notifications_held_until_later": held,
        "emails_delivered": mail.mailbox.count(),
        "told_in_person": visited,
        "failed_sessions": record.failed_sessions,
        "verified": verification.verified,
        "first_break": None if verification.first_break is None else str(verification.first_break),
        "complete": told == due,
        "traces_match": all(_trace_matches(t, record, due) for t in traces),
        "expected_but_not_told": sorted(f"{p} / {a}" for p, a in due - told),
        "told_but_not_expected": sorted(f"{p} / {a}" for p, a in told - due),
        "erased_or_withdrawn_told": sorted(pid for pid, _ in told
                                           if pid in record.erased | record.withdrawn),
    }
    tell(record, traces, summary)
    return summary


def _complete_chains(trace: dict[str, Any]) -> int:
    """Notifications whose person is found among the conversations this action rests on."""
    voices = {c["participant_id"] for p in trace["priorities"] for i in p["insights"]
              for c in i["conversations"]}
    return sum(1 for t in trace["told"] if t["participant_id"] in voices)


def _trace_matches(trace: dict[str, Any], record: thread.ThreadRecord,
                   due: set[tuple[str, str]]) -> bool:
    """The audit's trace of an action names exactly the conversations the demo cited behind it,
    and exactly the people the demo expected to be told of it."""
    action_id = str(trace["action_id"])
    cited = {str(c["conversation_id"]) for p in trace["priorities"] for i in p["insights"]
             for c in i["conversations"]}
    told = {str(t["participant_id"]) for t in trace["told"]}
    expected_told = {pid for pid, action in due if action == action_id}
    return cited == set(record.actions[action_id]["conversation_ids"]) and told == expected_told
