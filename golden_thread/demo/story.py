"""The short story of change the demo prints."""

from __future__ import annotations

from collections import Counter
from typing import Any

from golden_thread.demo.thread import ACTIONS, INSIGHT_TEXT, ThreadRecord


def tell(record: ThreadRecord, traces: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    heard = Counter(c for conv in record.conversations.values() for c in conv["categories"])
    print("\nWhat was heard")
    for category, n in heard.most_common():
        print(f"  {n:4d} conversations touched on {category.replace('_', ' ')}")
    print(f"  ({len(record.erased)} person asked to be forgotten; {len(record.withdrawn)} no "
          "longer wants to hear back)")
    print("\nWhat was agreed")
    for priority in record.priorities.values():
        print(f"  - {INSIGHT_TEXT[priority['category']]}")
    for reasons in record.failed_sessions:
        print(f"  (a session did not agree: {'; '.join(reasons)})")
    print("\nWhat changed")
    for trace in traces:
        description = ACTIONS[record.actions[trace["action_id"]]["category"]][0]
        print(f"  - {trace.get('service', '')}: {description} "
              f"({trace.get('status', '')}; rests on {trace.get('voices', 0)} voices)")
    print("\nWho was told")
    print(f"  {summary['participants_told']} people were told what changed "
          f"({summary['emails_delivered']} messages by email, {summary['told_in_person']} in "
          "person by a peer worker); "
          f"{summary['notifications_held_until_later']} messages are held until the date "
          "people chose.")
    verdict = "verified" if summary["verified"] else f"BROKEN at {summary['first_break']}"
    total = sum(summary["counts"].values())
    print(f"\nThe whole history ({total} events) replays and is {verdict}; "
          f"{summary['complete_chains']} notifications trace back to the voices behind them.")

