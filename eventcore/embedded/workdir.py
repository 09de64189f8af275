"""Temporary work directories (logs, PostgreSQL data), swept when their owner died uncleanly."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "golden-thread-stack-"
_OWNER_FILE = "owner.pid"


def make_temp_work_dir() -> Path:
    _sweep_abandoned()
    path = Path(tempfile.mkdtemp(prefix=PREFIX))
    (path / _OWNER_FILE).write_text(str(os.getpid()))
    return path


def _sweep_abandoned() -> None:
    # A killed test run takes its children with it (death signal) but cannot remove its
    # directory; the next stack does, once the owner pid is gone (~40 MB of PostgreSQL each).
    for candidate in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((candidate / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or not finished being created
        if not _alive(owner):
            shutil.rmtree(candidate, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
