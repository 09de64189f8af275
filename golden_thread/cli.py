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


def main() -> None:
    app()
