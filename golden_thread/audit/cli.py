"""`golden-thread audit`: replay and verify the history, trace the thread, report the story."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from golden_thread.audit.model import Verification
from golden_thread.audit.run import HistorySource, load, parse_as_of, render_summary, write_json
from golden_thread.audit.sources import DEFAULT_SCHEMAS, SourceError
from golden_thread.audit.verify import Replay, ReplayOptions

ALL_SCHEMAS = ",".join(DEFAULT_SCHEMAS)
audit_app = typer.Typer(no_args_is_help=True,
                        help="Replay and verify the influence history; trace it; report it.")

Bootstrap = Annotated[str | None, typer.Option(
    "--bootstrap", help="Kafka bootstrap servers (default: GT_KAFKA_BOOTSTRAP_SERVERS).")]
Topics = Annotated[str | None, typer.Option(
    help="Comma-separated topics to replay (default: every public topic).")]
FromStore = Annotated[str | None, typer.Option(
    "--from-store", help="Replay the services' event stores in this PostgreSQL database "
    "instead of the broker.")]
Schemas = Annotated[str, typer.Option(help="Comma-separated service schemas for --from-store.")]
FromFile = Annotated[Path | None, typer.Option(
    "--from-file", help="Replay an exported history: one JSON event per line.")]
AsOf = Annotated[str | None, typer.Option(
    "--as-of", help="Show the history as it stood then (events recorded at or before it), "
    "e.g. 2025-06-01T00:00:00Z.")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the result as JSON here.")]
Every = Annotated[int, typer.Option("--progress-every", min=1, help="Progress line every N.")]
MaxBuffered = Annotated[int, typer.Option(
    "--max-buffered", min=1, help="Most events held waiting for a missing sequence.")]
Skew = Annotated[float, typer.Option(
    "--clock-skew", min=0, help="Seconds a cited event may be recorded after its citer.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress lines.")]
Workers = Annotated[int | None, typer.Option(
    "--workers", min=0, help="Processes checking messages in a long replay (default: one per "
    "core, up to 4; 0: this process alone).")]


def _replay(bootstrap: str | None, topics: str | None, from_store: str | None, schemas: str,
            from_file: Path | None, as_of: str | None, every: int, max_buffered: int,
            skew: float, quiet: bool,
            workers: int | None = None) -> tuple[Replay, Verification, HistorySource]:
    if sum(x is not None for x in (topics, from_store, from_file)) > 1:
        raise typer.BadParameter("choose one of --topics, --from-store, --from-file")
    try:
        moment = parse_as_of(as_of)
    except ValueError:
        raise typer.BadParameter("--as-of must be an ISO 8601 time") from None
    source = HistorySource(
        bootstrap=bootstrap,
        topics=tuple(_split(topics)) if topics else HistorySource.topics,
        store_url=from_store, schemas=tuple(_split(schemas)), file=from_file)
    options = ReplayOptions(as_of=moment, max_buffered=max_buffered, clock_skew_s=skew,
                            progress_every=every)
    try:
        replay, verification = load(source, options, quiet=quiet, workers=workers)
    except (SourceError, ValueError, OSError) as exc:
        typer.echo(f"audit: cannot read the history: {exc}", err=True)
        raise typer.Exit(2) from None
    return replay, verification, source


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@audit_app.command()
def replay(
    bootstrap: Bootstrap = None, topics: Topics = None, from_store: FromStore = None,
    schemas: Schemas = ALL_SCHEMAS, from_file: FromFile = None,
    as_of: AsOf = None, json_path: JsonOut = None, progress_every: Every = 100_000,
    max_buffered: MaxBuffered = 100_000, clock_skew: Skew = 5.0, quiet: Quiet = False,
    workers: Workers = None,
) -> None:
    """Replay every public topic from the beginning and verify the whole history.

    Exits 1 naming the first break if any event was altered, removed, reordered or forged.
    """
    _, verification, source = _replay(bootstrap, topics, from_store, schemas, from_file, as_of,
                                      progress_every, max_buffered, clock_skew, quiet, workers)
    typer.echo(render_summary(verification, source.describe()))
    write_json(json_path, verification.as_json())
    raise typer.Exit(0 if verification.verified else 1)


@audit_app.command()
def trace(
    action: Annotated[str | None, typer.Option("--action", help="Action id to trace back.")] = None,
    participant: Annotated[str | None, typer.Option(
        "--participant", help="Participant id to trace forward.")] = None,
    bootstrap: Bootstrap = None, topics: Topics = None, from_store: FromStore = None,
    schemas: Schemas = ALL_SCHEMAS, from_file: FromFile = None,
    as_of: AsOf = None, json_path: JsonOut = None, progress_every: Every = 100_000,
    max_buffered: MaxBuffered = 100_000, clock_skew: Skew = 5.0, quiet: Quiet = True,
) -> None:
    """An action back to the conversations and who was told; or a participant's reach."""
    from golden_thread.audit.trace import (
        NotInHistory,
        render_action,
        render_participant,
        trace_action,
        trace_participant,
    )

    if (action is None) == (participant is None):
        raise typer.BadParameter("give exactly one of --action or --participant")
    replayed, verification, _ = _replay(bootstrap, topics, from_store, schemas, from_file,
                                        as_of, progress_every, max_buffered, clock_skew, quiet)
    try:
        if action is not None:
            found = trace_action(replayed.graph, action)
            text = render_action(found)
        else:
            assert participant is not None
            found = trace_participant(replayed.graph, participant)
            text = render_participant(found)
    except NotInHistory as exc:
        typer.echo(f"audit: {exc}", err=True)
        raise typer.Exit(1) from None
    if not verification.verified:
        print(f"audit: warning: the history does not verify ({verification.first_break})",
              file=sys.stderr)
    found["verified"] = verification.verified
    found["as_of"] = None if verification.as_of is None else verification.as_of.isoformat()
    typer.echo(text)
    write_json(json_path, found)


@audit_app.command()
def report(
    html: Annotated[Path, typer.Option("--html", help="Write the HTML report here.")],
    bootstrap: Bootstrap = None, topics: Topics = None, from_store: FromStore = None,
    schemas: Schemas = ALL_SCHEMAS, from_file: FromFile = None,
    as_of: AsOf = None, json_path: JsonOut = None, progress_every: Every = 100_000,
    max_buffered: MaxBuffered = 100_000, clock_skew: Skew = 5.0, quiet: Quiet = False,
) -> None:
    """A self-contained HTML story of change: flow, pace, equity, counts (no personal data)."""
    from golden_thread.audit.report import render_report
    from golden_thread.audit.stats import Reach, counts, equity, flow, pace

    replayed, verification, _ = _replay(bootstrap, topics, from_store, schemas, from_file,
                                        as_of, progress_every, max_buffered, clock_skew, quiet)
    g = replayed.graph
    html.write_text(render_report(g, verification), encoding="utf-8")
    reach = Reach.of(g)
    write_json(json_path, {
        "verified": verification.verified, "events": verification.events,
        "flow": [{"from": a, "to": b, "conversations": n} for a, b, n in flow(g, reach)],
        "pace": [asdict(p) for p in pace(g)],
        "equity": equity(g, reach), "counts": counts(g),
    })
    typer.echo(f"report written to {html} ({'verified' if verification.verified else 'NOT verified'}"
               f", {verification.events:,} events)")


@audit_app.command()
def bench(
    events: Annotated[int, typer.Option("--events", min=1)] = 1_000_000,
    json_path: JsonOut = None,
    seed: int = 7,
) -> None:
    """Generate a valid history of N events, replay and verify it; print events/s and peak RSS."""
    from golden_thread.audit.bench import run_bench

    result = run_bench(events, seed=seed)
    typer.echo(result.render())
    write_json(json_path, result.as_json())
    raise typer.Exit(0 if result.verified else 1)
