"""`golden-thread`: the one command for the demo, the embedded stack and the services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from golden_thread.audit.cli import audit_app
from golden_thread.stack_cli import stack_app

app = typer.Typer(no_args_is_help=True, help="Golden Thread: from a person's words to change, and back.")
app.add_typer(stack_app, name="stack", help="The embedded broker and PostgreSQL.")
app.add_typer(audit_app, name="audit", help="Replay and verify the history; trace it; report it.")


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="intake, insight, priority or feedback")],
    host: str = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="HTTP port (default per service)")] = None,
) -> None:
    """Run one service as its own process, using GT_* settings."""
    from golden_thread.services import SERVICES
    from golden_thread.services import serve as run

    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service; choose from {', '.join(SERVICES)}")
    run(service, host, port)


@app.command()
def demo(
    conversations: Annotated[int, typer.Option(min=1, max=100_000)] = 40,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write a JSON summary here")] = None,
    seed: int = 7,
) -> None:
    """Start the embedded stack and every service, drive a generated scenario, tell the story."""
    import asyncio

    from golden_thread.demo.runner import run_demo

    raise typer.Exit(asyncio.run(run_demo(conversations=conversations, json_path=json_path, seed=seed)))


@app.command("rebuild")
def rebuild_command(
    service: Annotated[str, typer.Argument(help="intake, insight, priority or feedback")],
) -> None:
    """Refold SERVICE's read models from its own event store (GT_DATABASE_URL)."""
    import asyncio

    from eventcore.settings import CoreSettings
    from golden_thread.maintenance import rebuild

    try:
        folded = asyncio.run(rebuild(service, CoreSettings()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"{service}: read models rebuilt from {folded} events")


@app.command("republish")
def republish_command(
    service: Annotated[str, typer.Argument(help="intake, insight, priority or feedback")],
    from_seq: Annotated[int, typer.Option("--from-seq", min=1, help="First sequence to send")] = 1,
) -> None:
    """Send SERVICE's stored events from --from-seq to the broker again (idempotent for consumers)."""
    import asyncio

    from eventcore.settings import CoreSettings
    from golden_thread.maintenance import republish

    try:
        sent = asyncio.run(republish(service, CoreSettings(), from_sequence=from_seq))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"{service}: re-published {sent} events from sequence {from_seq}")


@app.command("token")
def token_command(
    role: Annotated[str, typer.Option(help="community_listener, lived_experience_partner, "
                                      "service_lead, trust_system, auditor, admin (or system)")],
    subject: Annotated[str, typer.Option(help="The caller's pseudonymous id (the token's sub)")],
    ttl: Annotated[int, typer.Option(min=1, max=7 * 24 * 3600, help="Seconds until it expires")] = 3600,
) -> None:
    """Print a bearer token for SUBJECT in ROLE, signed with GT_AUTH_JWT_SECRET."""
    import re

    from contracts import ActorRole
    from contracts.fields import PSEUDONYMOUS_ID_PATTERN
    from eventcore.settings import CoreSettings
    from eventcore.tokens import AuthNotConfigured, mint_token

    if role not in ActorRole._value2member_map_:
        raise typer.BadParameter(f"unknown role; choose from {', '.join(r.value for r in ActorRole)}")
    if not re.match(PSEUDONYMOUS_ID_PATTERN, subject):
        raise typer.BadParameter("the subject must be a pseudonymous id (letters, digits, _.:-)")
    try:
        typer.echo(mint_token(CoreSettings(), role, subject, ttl_s=ttl))
    except AuthNotConfigured as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("bench")
def bench_command(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every figure here")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run in under a minute")] = False,
    phases: Annotated[str | None, typer.Option(
        "--phases", help="Run only these phases, comma-separated, to work on one part: "
        "database, broker, intake, insight, e2e, scaleout, others, replay (insight needs "
        "intake; e2e and scaleout need intake and insight). Ratios whose raw limit was not "
        "measured are left empty.")] = None,
) -> None:
    """Measure the system beside the raw limits of its broker and database, in one run."""
    import sys

    from golden_thread.bench.runner import PHASE_KEYS, missing_prerequisites
    from golden_thread.bench.runner import main as run

    chosen = None
    if phases is not None:
        chosen = [p.strip() for p in phases.split(",") if p.strip()]
        unknown = [p for p in chosen if p not in PHASE_KEYS]
        if unknown or not chosen:
            raise typer.BadParameter(
                f"unknown phase(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"choose from {', '.join(PHASE_KEYS)}", param_hint="--phases")
        if missing := missing_prerequisites(chosen):
            raise typer.BadParameter("; ".join(missing) + " (add it to the list)",
                                     param_hint="--phases")
    raise typer.Exit(run(quick, json_path, " ".join(["golden-thread", *sys.argv[1:]]), chosen))


@app.command("faults")
def faults_command(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results here")] = None,
    repeat: Annotated[int, typer.Option(min=1, max=100, help="Runs of each scenario")] = 1,
    quick: Annotated[bool, typer.Option("--quick", help="Shorter load, one kill each")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run just this scenario")] = None,
) -> None:
    """Kill services, relays, consumers, the database and the broker under load; count lost and
    duplicated effects against a fault-free run."""
    import asyncio

    from golden_thread.faults.report import run_faults

    try:
        code = asyncio.run(run_faults(json_path=json_path, repeat=repeat, quick=quick,
                                      only=only or ()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    raise typer.Exit(code)


def main() -> None:
    app()
