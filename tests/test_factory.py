"""The factory and its configuration: environment parsing and clear errors."""
import subprocess
import sys

import pytest

from backoffice import create_app
from backoffice.config import ConfigError, load_config
from tests.conftest import ROOT_DIR


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
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "backoffice: configuration error: DATABASE_URL must be a PostgreSQL URL (postgresql://user@host/db), not 'mysql'"
    ]
