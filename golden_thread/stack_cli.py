"""`golden-thread stack up`: run the embedded broker and PostgreSQL until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from eventcore.embedded import EmbeddedStack, StackStartError
from eventcore.settings import CoreSettings

TopicSource = Callable[[], Sequence[str]] | Sequence[str]


def contract_topics() -> list[str]:
    """Every topic the contracts declare; none while the contracts package has no topic list."""
    try:
        from contracts.topics import ALL_TOPICS  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return []
    return [str(name) for name in ALL_TOPICS]


async def serve(
    settings: CoreSettings, topics: Sequence[str], work_dir: Path | None = None
) -> None:
    """Start the stack, print its settings as shell exports, wait for a stop signal."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Installed before starting, so a signal during start-up still ends in an orderly stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    stack = EmbeddedStack(settings, topics=topics, work_dir=work_dir)
    async with stack as endpoints:
        started = stack.started()
        for name, value in endpoints.as_env().items():
            _say(f"export {name}={shlex.quote(value)}")
        if stack.work_dir is not None:
            _say(f"# logs and data: {stack.work_dir}")
        _say(f"# started: {', '.join(started) if started else 'nothing (settings name both)'}")
        _say(f"# topics: {', '.join(topics) if topics else '(none)'}")
        _say("# running; Ctrl-C or SIGTERM stops it")
        await stopping.wait()
        _say("# stopping")
    _say("# stopped: " + (f"{', '.join(started)} shut down" if started else "nothing to shut down"))


def _say(line: str) -> None:
    # Flushed per line: a supervising process reads the exports while we keep running.
    print(line, flush=True)


def build_stack_app(default_topics: TopicSource | None = None) -> typer.Typer:
    """The `stack` command group; `default_topics` are created in addition to any `--topic`."""
    app = typer.Typer(no_args_is_help=True, add_completion=False)

    @app.callback()
    def stack() -> None:
        """The embedded infrastructure: a Kafka-protocol broker and PostgreSQL on loopback."""

    @app.command()
    def up(
        topic: Annotated[
            list[str] | None, typer.Option("--topic", "-t", help="A topic to create (repeatable).")
        ] = None,
        with_default_topics: Annotated[
            bool,
            typer.Option(
                "--default-topics/--no-default-topics", help="Also create the contracts' topics."
            ),
        ] = True,
        work_dir: Annotated[
            Path | None,
            typer.Option(help="Keep logs and PostgreSQL data here instead of a temporary dir."),
        ] = None,
    ) -> None:
        """Start what GT_KAFKA_BOOTSTRAP_SERVERS / GT_DATABASE_URL do not name; run until stopped."""
        defaults = _resolve(default_topics) if with_default_topics else []
        topics = list(dict.fromkeys([*defaults, *(topic or [])]))
        try:
            asyncio.run(serve(CoreSettings(), topics, work_dir))
        except StackStartError as exc:
            print(f"stack did not start: {exc}", file=sys.stderr)
            raise typer.Exit(code=1) from None

    return app


def _resolve(source: TopicSource | None) -> list[str]:
    if source is None:
        return contract_topics()
    return list(source() if callable(source) else source)


stack_app = build_stack_app()

if __name__ == "__main__":
    stack_app()
