"""A throw-away PostgreSQL cluster on a loopback port, from the machine's own PostgreSQL binaries.

Tests and `jxa bench server` use it to run the PostgreSQL record store against a real server. The
cluster lives in a temporary folder, trusts loopback connections only, and is deleted on stop. As
root (CI), the server runs as the `postgres` user that Debian's package creates: PostgreSQL refuses
to run as root.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

INSTALL_HINT = "install Debian's PostgreSQL with `scripts/postgres.sh` (apt-get install postgresql)"


def find_binaries() -> Path:
    """The folder holding initdb and pg_ctl: Debian keeps them off PATH, under /usr/lib/postgresql."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
                         reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise ConfigError(f"PostgreSQL's initdb and pg_ctl were not found: {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TemporaryPostgres:
    """A running cluster: `url(db)` connects to one of its databases as the superuser `jxa`.

    Example:
        >>> with TemporaryPostgres.start() as pg:
        ...     pg.create_database("t1")
        ...     PostgresRecords(pg.url("t1"))
    """

    folder: Path
    port: int
    bin_dir: Path
    user: str | None  # the OS user the server runs as (None: this process's own)

    @classmethod
    def start(cls, *, port: int | None = None) -> TemporaryPostgres:
        bin_dir = find_binaries()
        user = "postgres" if os.geteuid() == 0 else None
        if user is not None:
            try:
                owner = pwd.getpwnam(user)
            except KeyError:
                raise ConfigError(f"running as root, PostgreSQL needs the '{user}' user: {INSTALL_HINT}") from None
        folder = Path(tempfile.mkdtemp(prefix="jxa-pg-"))
        if user is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        cluster = cls(folder=folder, port=port or free_port(), bin_dir=bin_dir, user=user)
        try:
            cluster._run("initdb", "-D", str(cluster.data), "-U", "jxa", "--auth=trust", "--encoding=UTF8",
                         "--locale=C", "--no-sync")
            options = (f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c unix_socket_directories='' "
                       f"-c fsync=off -c max_connections=100 -c shared_buffers=32MB")
            cluster._run("pg_ctl", "-D", str(cluster.data), "-l", str(folder / "server.log"), "-o", options,
                         "-w", "-t", "60", "start")
        except BaseException:
            cluster.stop()
            raise
        log.info("temporary PostgreSQL on 127.0.0.1:%d in %s", cluster.port, folder)
        return cluster

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://jxa@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([str(self.bin_dir / tool), *args], user=self.user, cwd=self.folder,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log_file = self.folder / "server.log"
            tail = log_file.read_text(errors="replace")[-1500:] if log_file.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-1500:]}\n{tail}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                log.warning("temporary PostgreSQL did not stop cleanly: %s", exc)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TemporaryPostgres:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
