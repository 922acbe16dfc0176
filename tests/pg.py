"""A real PostgreSQL server for the tests: initdb and pg_ctl in a temporary directory, on a
free loopback port, as an unprivileged user (postgres refuses to run as root), stopped and
removed at the end.

The binaries are found on ``PATH``, in ``/usr/local/bin`` or where Debian puts them
(``/usr/lib/postgresql/<version>/bin``); ``.ci/run`` installs Debian's package when none is
there. Without binaries the tests that need a server are skipped, except in CI (``CI`` set),
where that is a failure.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_SECONDS = 30
UNPRIVILEGED_USER = "nobody"


@dataclass(frozen=True)
class PostgresServer:
    """A running server: superuser ``postgres`` with ``password`` on 127.0.0.1:``port``."""

    port: int
    password: str
    host: str = "127.0.0.1"
    user: str = "postgres"

    def dsn(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``database``."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Creates database ``name`` (letters, digits, _) and returns its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain database name: {name!r}")
        import psycopg2

        connection = psycopg2.connect(self.dsn())
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name}")
        finally:
            connection.close()
        return self.dsn(name)


def find_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    candidates.append(Path("/usr/local/bin"))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", path.parent.name))

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    candidates += debian
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Starts a server for the block; skips (fails in CI) when no binaries are installed."""
    binaries = find_binaries()
    if binaries is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found; .ci/run installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    as_root = os.geteuid() == 0
    account = pwd.getpwnam(UNPRIVILEGED_USER) if as_root else pwd.getpwuid(os.geteuid())
    home = Path(tempfile.mkdtemp(prefix="argos-pg-"))
    data = home / "data"
    password = secrets.token_urlsafe(16)
    pwfile = home / "password"
    pwfile.write_text(password + "\n")
    if as_root:
        for path in (home, pwfile):
            os.chown(path, account.pw_uid, account.pw_gid)

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binaries / command[0]), *command[1:]],
            user=account.pw_uid if as_root else None,
            group=account.pw_gid if as_root else None,
            cwd=home,
            env={**os.environ, "HOME": str(home), "LC_ALL": "C"},
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS * 2,
            check=False,
        )

    try:
        done = run(
            "initdb", "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-sync",
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()[-2000:]}")
        port = _free_port()
        options = (
            f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=40"
        )
        done = run(
            "pg_ctl", "-D", str(data), "-l", str(home / "server.log"), "-o", options,
            "-w", "-t", str(STARTUP_SECONDS), "start",
        )  # fmt: skip
        if done.returncode:
            log = (home / "server.log").read_text() if (home / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{log[-2000:]}")
        yield PostgresServer(port=port, password=password)
    finally:
        if (data / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)
