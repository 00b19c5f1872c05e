"""Heartbeats of the long-running processes (`worker.py`, `worker.py --scheduler`), kept in PostgreSQL.

Each process writes one row of `sync_state` every HEARTBEAT_SECONDS, saying whether it reaches Redis. The row is in
PostgreSQL, not Redis, so a process waiting out a Redis outage can still say it is alive and what it waits for,
and the jobs page and /readyz read it without asking Redis.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from backoffice.billing.models import SyncState

PREFIX = "heartbeat:process:"
ROLES = ("worker", "scheduler")
MISSED_BEATS = 3  # a process is silent once this many beats are late
FORGET_AFTER = timedelta(hours=1)  # rows of processes gone longer than this are no longer shown
REDIS_OK = "ok"
REDIS_WAITING = "waiting"


@dataclass(frozen=True)
class ProcessBeat:
    """One process's last heartbeat, as the jobs page and /readyz show it."""

    name: str
    role: str
    at: datetime
    redis: str  # REDIS_OK, or REDIS_WAITING while it retries
    redis_since: datetime | None  # when it lost Redis, while it waits
    alive: bool


def write_beat(connection: Connection, role: str, name: str, redis: str, redis_since: datetime | None,
               now: datetime) -> None:
    """Record that the process `name` is alive now and whether it reaches Redis."""
    value = {"role": role, "name": name, "at": now.isoformat(), "redis": redis,
             "redis_since": redis_since.isoformat() if redis_since else None}
    statement = insert(SyncState).values(key=PREFIX + name, value=value, updated_at=now)
    connection.execute(statement.on_conflict_do_update(
        index_elements=[SyncState.key], set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at}))


def forget_beat(connection: Connection, name: str) -> None:
    """Remove the row of a process that stops cleanly, so it is not shown as silent."""
    connection.execute(delete(SyncState).where(SyncState.key == PREFIX + name))


def read_beats(session: Session, now: datetime, interval: float) -> list[ProcessBeat]:
    """The processes that beat within the last hour, newest first; `alive` when the last beat is recent enough."""
    rows = session.execute(select(SyncState.value, SyncState.updated_at).where(
        SyncState.key.startswith(PREFIX), SyncState.updated_at >= now - FORGET_AFTER)).all()
    beats = [_beat(value, at, now, interval) for value, at in rows if isinstance(value, dict)]
    return sorted(beats, key=lambda beat: (beat.role, beat.at), reverse=True)


def _beat(value: dict[str, Any], at: datetime, now: datetime, interval: float) -> ProcessBeat:
    since = value.get("redis_since")
    return ProcessBeat(name=str(value.get("name")), role=str(value.get("role")), at=at.astimezone(UTC),
                       redis=str(value.get("redis")), redis_since=datetime.fromisoformat(since) if since else None,
                       alive=now - at <= timedelta(seconds=interval * MISSED_BEATS))


def summary(beats: list[ProcessBeat]) -> dict[str, int]:
    """How many processes of each role are alive, and how many of those wait for Redis (for /readyz)."""
    counts = {role: 0 for role in ROLES}
    counts["waiting_for_redis"] = 0
    for beat in beats:
        if beat.alive:
            counts[beat.role] = counts.get(beat.role, 0) + 1
            counts["waiting_for_redis"] += beat.redis != REDIS_OK
    return counts
