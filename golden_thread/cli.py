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
    from golden_thread.services import SERVICES, serve as run

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


def main() -> None:
    app()
