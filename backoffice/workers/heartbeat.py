"""A worker's or scheduler's heartbeat row, written from a thread of its own, and PostgreSQL's return noticed."""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from backoffice.extensions import db
from backoffice.liveness import REDIS_OK, REDIS_WAITING, forget_beat, write_beat

log = logging.getLogger("backoffice.worker")


class Heartbeat(threading.Thread):
    """Write this process's heartbeat row every HEARTBEAT_SECONDS, and notice PostgreSQL coming back."""

    def __init__(self, app, role: str, on_database_back: Callable[[], None] | None = None):
        super().__init__(name=f"heartbeat-{role}", daemon=True)
        self.app = app
        self.role = role
        self.process = f"{role}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.interval = float(app.config["HEARTBEAT_SECONDS"])
        self.on_database_back = on_database_back
        self.redis = REDIS_WAITING
        self.redis_since: datetime | None = datetime.now(UTC)
        self.stopping = threading.Event()
        self.changed = threading.Event()

    def redis_lost(self) -> None:
        if self.redis == REDIS_OK:
            self.redis, self.redis_since = REDIS_WAITING, datetime.now(UTC)
            self.changed.set()

    def redis_back(self) -> None:
        if self.redis != REDIS_OK:
            self.redis, self.redis_since = REDIS_OK, None
            self.changed.set()

    def run(self) -> None:
        database_up = True
        while not self.stopping.is_set():
            beaten = self.beat()
            if beaten and not database_up and self.on_database_back is not None:
                log.info("PostgreSQL is back: queueing the catch-up")
                self.on_database_back()
            database_up = beaten
            # While PostgreSQL is away, look every second: the catch-up starts as soon as it is back.
            self.changed.wait(self.interval if beaten else 1.0)
            self.changed.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.changed.set()
        self.join(timeout=5)
        try:
            with self.app.app_context():
                with db.engine.begin() as connection:
                    forget_beat(connection, self.process)
        except SQLAlchemyError:
            pass  # the row goes silent and is no longer shown after an hour

    def beat(self) -> bool:
        try:
            with self.app.app_context(), db.engine.begin() as connection:
                write_beat(connection, self.role, self.process, self.redis, self.redis_since, datetime.now(UTC))
            return True
        except SQLAlchemyError as error:
            log.warning("%s heartbeat not written, PostgreSQL unavailable: %s", self.role, type(error).__name__)
            return False
