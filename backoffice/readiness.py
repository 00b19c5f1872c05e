"""Readiness checks: PostgreSQL reachable and migrated to head, Redis reachable when configured."""
from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session


@cache
def migration_heads(migrations_dir: str) -> frozenset[str]:
    """Return the head revisions of the migration scripts."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(migrations_dir)))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def check_database(session: Session, migrations_dir: str) -> dict[str, str]:
    """Return the state of the database and of its migrations."""
    try:
        applied = set(session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except Exception as error:  # any failure means "not ready"; the message says which
        session.rollback()
        return {"database": f"unavailable: {type(error).__name__}", "migrations": "unknown"}
    finally:
        session.close()
    heads = migration_heads(migrations_dir)
    migrations = "at head" if applied == set(heads) else f"behind: at {sorted(applied)}, head {sorted(heads)}"
    return {"database": "ok", "migrations": migrations}


def check_redis(url: str | None) -> str:
    """Return the state of Redis, or say that jobs run in-process."""
    if not url:
        return "not configured: jobs run in-process"
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except RedisError as error:
        return f"unavailable: {type(error).__name__}"
    return "ok"
