"""The factory and its configuration: environment parsing and clear errors; the entry points that fill them in."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import backoffice
from backoffice import create_app
from backoffice.config import ConfigError, load_config
from tests.conftest import ROOT_DIR

UNREACHABLE_DATABASE = "postgresql+psycopg://nobody@127.0.0.1:9/none"
DATABASE_UNSET = "DATABASE_URL is not set (a PostgreSQL URL such as postgresql://user@host/db)"
KEY_UNSET = "SECRET_KEY is not set (a long random string, the same on every node)"
FOR_DEVELOPMENT = "for development, `make demo` and `flask --app backoffice.dev` use"
NEITHER_DATABASE_NOR_KEY = (f"{DATABASE_UNSET} and {KEY_UNSET}; {FOR_DEVELOPMENT} an embedded PostgreSQL under "
                            "instance/ and a key kept in instance/secret_key")


def test_factory_applies_overrides(make_app):
    app = make_app(PLAN_ORDER=("free", "pro"))
    assert app.config["PLAN_ORDER"] == ("free", "pro")
    assert app.config["TESTING"] is True
    assert "sqlalchemy" in app.extensions and "migrate" in app.extensions


def test_environment_is_parsed():
    settings = load_config({
        "DATABASE_URL": "postgres://u@db.internal/backoffice",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "STRIPE_SECRET_KEY": "sk_test_abc123",
        "STRIPE_API_BASE": "http://127.0.0.1:12111/",
        "STRIPE_WEBHOOK_SECRETS": "whsec_old, whsec_new",
        "PUBLIC_SUBSCRIPTION_ENABLED": "true",
        "TRUST_PROXY_HEADERS": "yes",
        "TRUSTED_PROXY_ADDRESSES": "10.0.0.0/8,127.0.0.1",
        "PLAN_ORDER": "Basis,Standard,Premium",
        "PLATFORM_CURRENCY": "DKK",
        "SETTLE_SECONDS": "0",
    })
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.internal/backoffice"
    assert settings["STRIPE_API_BASE"] == "http://127.0.0.1:12111"
    assert settings["STRIPE_WEBHOOK_SECRETS"] == ("whsec_old", "whsec_new")
    assert settings["PUBLIC_SUBSCRIPTION_ENABLED"] is True
    assert settings["TRUSTED_PROXY_ADDRESSES"] == ("10.0.0.0/8", "127.0.0.1")
    assert settings["PLAN_ORDER"] == ("basis", "standard", "premium")
    assert settings["PLATFORM_CURRENCY"] == "DKK"
    assert settings["SETTLE_SECONDS"] == 0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "sqlite:///x.db", "DATABASE_URL must be a PostgreSQL URL"),
        ("REDIS_URL", "http://127.0.0.1", "REDIS_URL must be a redis://"),
        ("STRIPE_SECRET_KEY", "pk_test_123", "STRIPE_SECRET_KEY must be a Stripe secret"),
        ("STRIPE_WEBHOOK_SECRETS", "whsec_a,nope", "STRIPE_WEBHOOK_SECRETS must be"),
        ("PUBLIC_SUBSCRIPTION_ENABLED", "maybe", "PUBLIC_SUBSCRIPTION_ENABLED must be true or false"),
        ("TRUSTED_PROXY_ADDRESSES", "proxy.internal", "TRUSTED_PROXY_ADDRESSES must list IP"),
        ("PLAN_ORDER", "basis", "PLAN_ORDER must list at least two"),
        ("PLATFORM_CURRENCY", "eur", "PLATFORM_CURRENCY must be an ISO 4217 code"),
        ("SETTLE_SECONDS", "-1", "SETTLE_SECONDS must be at least 0"),
        ("SETTLE_SECONDS", "soon", "SETTLE_SECONDS must be a whole number"),
        ("STRIPE_API_VERSIONS", "latest", "STRIPE_API_VERSIONS must list"),
    ],
)
def test_bad_values_raise_one_clear_error(variable, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config({variable: value})


def test_inconsistent_settings_are_refused():
    with pytest.raises(ConfigError, match="STRIPE_API_BASE is set but STRIPE_SECRET_KEY is not"):
        load_config({"STRIPE_API_BASE": "http://127.0.0.1:9"})
    with pytest.raises(ConfigError, match="PROXY_SHARED_SECRET is set but TRUST_PROXY_HEADERS is off"):
        load_config({"PROXY_SHARED_SECRET": "s3cret"})


def test_create_app_refuses_bad_environment(monkeypatch):
    monkeypatch.setenv("PLATFORM_CURRENCY", "euro")
    with pytest.raises(ConfigError):
        create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1/none"})


def test_entry_point_prints_one_line_not_a_traceback():
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT_DIR, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "mysql://root@127.0.0.1/x"},
    )
    assert result.returncode == 3  # gunicorn's "worker failed to boot", on which it stops instead of respawning
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "backoffice: configuration error: DATABASE_URL must be a PostgreSQL URL (postgresql://user@host/db), not 'mysql'"
    ]


def processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every running process."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (parent, (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # it ended while being read
            continue
    return found


def started_since(before: set[int], path: Path) -> list[str]:
    """Command lines of the processes new since `before` that this process started or that work under `path`."""
    # The embedded server detaches from whoever starts it (pg_ctl), so its data directory is what gives it away.
    return [command for pid, (parent, command) in processes().items()
            if pid not in before and (parent == os.getpid() or str(path) in command)]


@pytest.mark.parametrize(("environment", "message"), [
    ({}, NEITHER_DATABASE_NOR_KEY),
    ({"SECRET_KEY": "s3cret"}, f"{DATABASE_UNSET}; {FOR_DEVELOPMENT} an embedded PostgreSQL under instance/"),
    ({"DATABASE_URL": "postgresql://u@db.internal/b"}, f"{KEY_UNSET}; {FOR_DEVELOPMENT} a key kept in instance/secret_key"),
], ids=["neither", "no database", "no key"])
def test_factory_refuses_to_start_without_database_or_key(monkeypatch, environment, message):
    for variable in ("DATABASE_URL", "SECRET_KEY"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as refused:
        create_app()
    assert str(refused.value) == message


def test_factory_starts_no_server_and_writes_no_file(monkeypatch, tmp_path):
    for variable in ("DATABASE_URL", "SECRET_KEY"):
        monkeypatch.delenv(variable, raising=False)
    # An empty project root gives the app an instance folder where anything written would show.
    monkeypatch.setattr(backoffice, "PROJECT_ROOT", tmp_path)
    before, on_sigterm = set(processes()), signal.getsignal(signal.SIGTERM)

    with pytest.raises(ConfigError):
        create_app()
    app = create_app({"SQLALCHEMY_DATABASE_URI": UNREACHABLE_DATABASE, "SECRET_KEY": "given"})

    assert app.instance_path == str(tmp_path / "instance")
    assert list(tmp_path.iterdir()) == []
    assert started_since(before, tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is on_sigterm


@pytest.mark.parametrize(("command", "status"), [(["-c", "import wsgi"], 3), (["worker.py", "--burst"], 2)],
                         ids=["wsgi", "worker"])
def test_production_entry_points_stop_with_one_line_without_database_or_key(command, status):
    result = subprocess.run([sys.executable, *command], cwd=ROOT_DIR, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == status
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"backoffice: configuration error: {NEITHER_DATABASE_NOR_KEY}"]


# `flask --app backoffice.dev` calls create_app(); here with the instance folder moved to the test's own.
DEVELOPMENT_APP = """
import sys
from pathlib import Path

from sqlalchemy import text

import backoffice.dev
from backoffice.extensions import db

backoffice.dev.INSTANCE_PATH = Path(sys.argv[1])
app = backoffice.dev.create_app()
with app.app_context():
    print(db.session.execute(text("SELECT current_database()")).scalar_one())
    db.engine.dispose()
print(app.config["SQLALCHEMY_DATABASE_URI"])
print(app.config["SECRET_KEY"])
"""


def test_development_entry_point_starts_an_embedded_database_and_keeps_a_key(tmp_path):
    env = {name: value for name, value in os.environ.items() if name not in {"DATABASE_URL", "SECRET_KEY"}}
    before = set(processes())

    def run() -> list[str]:
        result = subprocess.run([sys.executable, "-c", DEVELOPMENT_APP, str(tmp_path)], cwd=ROOT_DIR, env=env,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.splitlines()

    database, url, key = run()
    assert database == "backoffice"
    # The app connects as the embedded server's runtime role (it owns nothing; the migrations run as postgres).
    assert url.startswith("postgresql+psycopg://backoffice_app@/backoffice?host=")
    assert (tmp_path / "postgres").is_dir()
    assert len(key) == 64 and (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    # A second start joins the same data directory and reads the same key: sessions outlive a restart.
    assert run() == [database, url, key]
    # The last user gone, the embedded server stops with it.
    assert started_since(before, tmp_path) == []
