"""PostgreSQL for the test run: a migrated template database, cloned into one fresh database per run."""
from __future__ import annotations

import ast
import hashlib
import os
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TEMPLATE_PREFIX = "backoffice_template_"
RUN_PREFIX = "backoffice_test_"
# The module that registers every table (migrations/env.py compares the database with its metadata).
MODELS = "backoffice.models"
# The tests' app connects as this login in the runtime group, as production does (migration 0016); the template
# is migrated as the server's own user, the owner. Roles are server-wide: one login serves every run database.
RUNTIME_ROLE = "backoffice_test_runtime"
RUNTIME_PASSWORD = "backoffice-test-runtime"  # for a TEST_DATABASE_URL server that asks for one; loopback only


def server_url() -> str:
    """Return a URL of a PostgreSQL server we may create databases on: TEST_DATABASE_URL, loopback, or embedded."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    try:
        psycopg.connect(LOCAL_SERVER, connect_timeout=2).close()
        return LOCAL_SERVER
    except psycopg.OperationalError:
        from backoffice.embedded_db import embedded_database_url

        url = embedded_database_url(str(Path(tempfile.gettempdir()) / "backoffice-test-instance"))
        return url.replace("postgresql+psycopg://", "postgresql://").replace("/backoffice?", "/postgres?")


def with_database(url: str, name: str) -> str:
    """Return `url` pointing at database `name` (host may be a socket directory in the query)."""
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def migrations_fingerprint() -> str:
    """Hash what building the template reads, so that a change to any of it builds a new one.

    That is the migration scripts and `migrations/env.py`, and the models env.py takes its metadata from: it
    runs inside the app, which imports `backoffice.models` (every model module, and what they import at module
    level: the columns, the lenses, the vocabulary, the extensions' naming convention). A file read costs
    microseconds; the closure is a few dozen files.
    """
    digest = hashlib.sha256()
    migrations = [path for path in (ROOT / "migrations").rglob("*")
                  if path.is_file() and path.suffix in {".py", ".ini", ".mako"} and "__pycache__" not in path.parts]
    for path in sorted({*migrations, *_loaded_by(MODELS)}):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _module_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _loaded_by(module: str) -> set[Path]:
    """The Backoffice files importing `module` runs: its own, its packages', and those of its top-level imports."""
    seen: set[Path] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            path = _module_path(".".join(parts[:depth]))
            if path is None or path in seen:
                continue
            seen.add(path)
            for node in ast.parse(path.read_text()).body:  # imports inside functions run later, if ever
                if isinstance(node, ast.Import):
                    pending += [alias.name for alias in node.names if alias.name.startswith("backoffice")]
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backoffice"):
                    pending += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return seen


def ensure_template(server: str, migrate) -> str:
    """Create and migrate the template database once per migration fingerprint (under an advisory lock)."""
    name = TEMPLATE_PREFIX + migrations_fingerprint()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('backoffice-test-template'))")
        try:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s AND datistemplate", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                migrate(with_database(server, name))
                conn.execute(sql.SQL("ALTER DATABASE {} WITH is_template true").format(sql.Identifier(name)))
                _drop_stale_templates(conn, keep=name)
            _ensure_runtime_role(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('backoffice-test-template'))")
    return name


def _ensure_runtime_role(conn: psycopg.Connection) -> None:
    """Make the tests' runtime login when it is missing (under the template lock: role DDL does not like races)."""
    from backoffice.database_roles import RUNTIME_GROUP, create_runtime_role

    ready = conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER') FROM pg_roles WHERE rolname = %s"
                         " AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)",
                         (RUNTIME_ROLE, RUNTIME_GROUP, RUNTIME_ROLE, RUNTIME_GROUP)).fetchone()
    if not (ready and ready[0]):
        create_runtime_role(conn, RUNTIME_ROLE, RUNTIME_PASSWORD)


def app_url(server: str, name: str) -> str:
    """Return the SQLAlchemy URL of database `name` as the runtime role: what the tests' app connects with."""
    from backoffice.database_roles import url_as

    return url_as(sqlalchemy_url(with_database(server, name)), RUNTIME_ROLE, RUNTIME_PASSWORD)


def _drop_stale_templates(conn: psycopg.Connection, keep: str) -> None:
    stale = conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s", (TEMPLATE_PREFIX + "%", keep)
    ).fetchall()
    for (name,) in stale:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH is_template false").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create_run_database(server: str, template: str, label: str) -> str:
    """Clone the template into a database for this test process and return its name."""
    name = f"{RUN_PREFIX}{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return name


def drop_database(server: str, name: str) -> None:
    """Drop a run database, closing whatever still holds it."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def sqlalchemy_url(url: str) -> str:
    """Return the psycopg 3 SQLAlchemy form of a PostgreSQL URL."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
