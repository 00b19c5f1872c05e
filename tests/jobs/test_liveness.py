"""The heartbeats of the worker and scheduler processes, as the jobs page and /readyz show them (issue 18)."""
from datetime import UTC, datetime, timedelta

from backoffice.extensions import db
from backoffice.liveness import REDIS_OK, REDIS_WAITING, forget_beat, read_beats, summary, write_beat


def beat(app, role, name, redis, age_seconds, redis_since=None):
    now = datetime.now(UTC)
    with app.app_context():
        write_beat(db.session.connection(), role, name, redis, redis_since, now - timedelta(seconds=age_seconds))
        db.session.commit()
        db.session.remove()


def test_beats_are_read_alive_or_silent_and_summed(app, db_connection):
    beat(app, "worker", "worker:a", REDIS_OK, 1)
    beat(app, "worker", "worker:b", REDIS_WAITING, 2, datetime.now(UTC) - timedelta(seconds=40))
    beat(app, "scheduler", "scheduler:a", REDIS_OK, 31)  # three beats of 10 s missed: silent
    beat(app, "worker", "worker:old", REDIS_OK, 7200)  # gone for two hours: no longer shown
    with app.app_context():
        beats = read_beats(db.session, datetime.now(UTC), 10)
        assert {(b.name, b.alive, b.redis) for b in beats} == {
            ("worker:a", True, REDIS_OK), ("worker:b", True, REDIS_WAITING), ("scheduler:a", False, REDIS_OK)}
        assert summary(beats) == {"worker": 2, "scheduler": 0, "waiting_for_redis": 1}
        forget_beat(db.session.connection(), "worker:a")
        assert "worker:a" not in {b.name for b in read_beats(db.session, datetime.now(UTC), 10)}


def test_the_jobs_page_shows_each_process_and_what_it_waits_for(app, client, db_connection, operator_headers,
                                                               redis_url, settings):
    settings(REDIS_URL=redis_url)
    beat(app, "worker", "worker:host:1", REDIS_OK, 1)
    beat(app, "worker", "worker:host:2", REDIS_WAITING, 1, datetime.now(UTC) - timedelta(minutes=2))
    beat(app, "scheduler", "scheduler:host:3", REDIS_OK, 600)
    page = client.get("/jobs", headers=operator_headers).get_data(as_text=True)
    section = page.split('data-testid="processes"', 1)[1]
    assert "worker:host:1" in section and "running" in section
    assert "worker:host:2" in section and "waiting for Redis since" in section
    assert "scheduler:host:3" in section and "silent" in section


def test_the_jobs_page_says_when_no_worker_reports(app, client, db_connection, operator_headers, redis_url, settings):
    settings(REDIS_URL=redis_url)
    assert "No worker or scheduler has reported" in client.get("/jobs", headers=operator_headers).get_data(as_text=True)
    settings(REDIS_URL=None)
    assert "no worker is needed" in client.get("/jobs", headers=operator_headers).get_data(as_text=True)


def test_readyz_reports_the_processes_without_requiring_them(app, client, db_connection, redis_url, settings):
    settings(REDIS_URL=redis_url)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["processes"] == {"worker": 0, "scheduler": 0, "waiting_for_redis": 0}
    beat(app, "worker", "worker:r", REDIS_WAITING, 1, datetime.now(UTC))
    beat(app, "scheduler", "scheduler:r", REDIS_OK, 1)
    assert client.get("/readyz").get_json()["processes"] == {"worker": 1, "scheduler": 1, "waiting_for_redis": 1}
