"""Configuration: defaults, read from unprefixed environment variables and validated once."""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}

DEFAULT_STRIPE_API_VERSIONS = (
    # pre-2025 shape family
    "2020-03-02", "2020-08-27", "2022-08-01", "2022-11-15", "2023-08-16", "2023-10-16",
    "2024-04-10", "2024-06-20", "2024-09-30.acacia", "2024-10-28.acacia", "2024-11-20.acacia",
    "2024-12-18.acacia", "2025-01-27.acacia", "2025-02-24.acacia",
    # basil and later
    "2025-03-31.basil", "2025-04-30.basil", "2025-05-28.basil", "2025-06-30.basil",
    "2025-07-30.basil", "2025-08-27.basil", "2025-09-30.clover", "2025-10-29.clover",
    "2025-11-17.clover", "2025-12-15.clover", "2026-01-28.clover", "2026-02-25.clover",
    "2026-03-25.dahlia", "2026-04-22.dahlia", "2026-05-27.dahlia", "2026-06-24.dahlia",
    "2026-07-29.dahlia", "2026-08-26.endive", "2026-09-30.endive", "2026-10-28.endive",
)


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


class Config:
    """Defaults for every setting; `load_config` overrides them from the environment."""

    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str | None = None
    # The owner's URL, for `flask db upgrade` and the release step only; the app connects as DATABASE_URL's
    # runtime role, which owns nothing and so cannot switch the append-only triggers off (migration 0016).
    MIGRATION_DATABASE_URI: str | None = None
    # jsonb arrives as text to parse: orjson does it several times faster than json, which a replay reading
    # every archived payload spends most of its Python time on.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "json_deserializer": orjson.loads}
    # What an outage costs a request, in seconds (extensions.engine_options says why these values).
    DATABASE_CONNECT_TIMEOUT = 3
    DATABASE_POOL_TIMEOUT = 5
    DATABASE_POOL_RECYCLE = 1800
    REDIS_URL: str | None = None
    # Redis on the request path (backoffice/jobs.py): each reply waits at most this long, and after a failure the
    # process skips Redis for REDIS_CIRCUIT_SECONDS, so a slow or frozen Redis costs a webhook ~50 ms once, not 5 s
    # each time. worker.py waits REDIS_WORKER_SOCKET_TIMEOUT instead: a worker can afford to wait, not to fail.
    REDIS_SOCKET_TIMEOUT = 0.05
    REDIS_WORKER_SOCKET_TIMEOUT = 5.0
    REDIS_CIRCUIT_SECONDS = 5.0
    # How often worker.py and the scheduler write their heartbeat row; the jobs page and /readyz call a process
    # silent after three missed beats.
    HEARTBEAT_SECONDS = 10
    STRIPE_SECRET_KEY: str | None = None
    STRIPE_API_BASE: str | None = None
    STRIPE_WEBHOOK_SECRETS: tuple[str, ...] = ()
    STRIPE_API_VERSIONS: tuple[str, ...] = DEFAULT_STRIPE_API_VERSIONS
    STRIPE_RATE_LIMIT: int | None = None  # requests/s; None: 80 for live keys, 25 for test keys
    PUBLIC_SUBSCRIPTION_ENABLED = False
    BACKOFFICE_ADMINS_GROUP_ID: str | None = None
    TRUST_PROXY_HEADERS = False
    TRUSTED_PROXY_ADDRESSES: tuple[str, ...] = ()
    PROXY_SHARED_SECRET: str | None = None
    PROXY_SHARED_SECRET_HEADER = "X-Backoffice-Proxy-Secret"
    IDENTITY_NAME_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
    IDENTITY_ID_HEADER = "X-MS-CLIENT-PRINCIPAL-ID"
    IDENTITY_PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
    LOGIN_URL = "/.auth/login/aad"
    BACKOFFICE_DEV_LOGIN = False
    PLAN_ORDER: tuple[str, ...] = ("basis", "standard", "premium")
    PLATFORM_CURRENCY = "EUR"
    SETTLE_SECONDS = 5
    BLOB_DIR: str | None = None
    LOG_LEVEL = "INFO"
    LOG_FORMAT = "json"
    # Without Redis: "threads" runs jobs on a small pool; "deferred" keeps them until run_deferred() drains
    # them in the caller's thread (a burst worker, for tests and scripts).
    IN_PROCESS_JOBS = "threads"
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "UTC"
    LANGUAGES: tuple[str, ...] = ("en", "da")
    MAX_CONTENT_LENGTH = 1024 * 1024
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # The console is served over https in production; backoffice/dev.py and the tests turn this off for local http.
    SESSION_COOKIE_SECURE = True
    # How many proxies in front set X-Forwarded-For/-Proto/-Host (ProxyFix); 0 believes none of them.
    PROXY_FIX_HOPS = 0


def _bool(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int_at_least(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, not {value}")
        return value
    return parse


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _database_url(name: str, raw: str) -> str:
    url = raw.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ConfigError(f"{name} must be a PostgreSQL URL (postgresql://user@host/db), not {scheme or url!r}")
    return f"postgresql+psycopg://{rest}"


def _redis_url(name: str, raw: str) -> str:
    url = raw.strip()
    if not re.match(r"^(redis|rediss|unix)://", url):
        raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL")
    return url


def _stripe_key(name: str, raw: str) -> str:
    key = raw.strip()
    if not re.match(r"^(sk|rk)_(test|live)_\w+$", key):
        raise ConfigError(f"{name} must be a Stripe secret or restricted key (sk_test_…, sk_live_…, rk_…)")
    return key


def _http_url(name: str, raw: str) -> str:
    url = raw.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"{name} must be an http(s) URL, not {raw!r}")
    return url


def _webhook_secrets(name: str, raw: str) -> tuple[str, ...]:
    values = _list(raw)
    bad = [v for v in values if not v.startswith("whsec_")]
    if bad:
        raise ConfigError(f"{name} must be a comma-separated list of whsec_… secrets")
    return values


def _api_versions(name: str, raw: str) -> tuple[str, ...]:
    values = _list(raw)
    bad = [v for v in values if not re.match(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$", v)]
    if not values or bad:
        raise ConfigError(f"{name} must list Stripe API versions such as 2025-03-31.basil; bad: {', '.join(bad)}")
    return values


def _plan_order(name: str, raw: str) -> tuple[str, ...]:
    plans = tuple(p.lower() for p in _list(raw))
    if len(plans) < 2 or len(set(plans)) != len(plans) or not all(re.match(r"^[a-z][a-z0-9_-]*$", p) for p in plans):
        raise ConfigError(f"{name} must list at least two distinct plan keys, lowest first (e.g. basis,standard,premium)")
    return plans


def _currency(name: str, raw: str) -> str:
    code = raw.strip()
    if not re.match(r"^[A-Z]{3}$", code):
        raise ConfigError(f"{name} must be an ISO 4217 code in capitals such as EUR, not {raw!r}")
    return code


def _addresses(name: str, raw: str) -> tuple[str, ...]:
    values = _list(raw)
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ConfigError(f"{name} must list IP addresses or networks; {value!r} is neither") from None
    return values


def _text(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _log_level(name: str, raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{name} must be DEBUG, INFO, WARNING or ERROR")
    return level


def _one_word_of(*words: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in words:
            raise ConfigError(f"{name} must be {' or '.join(words)}")
        return value
    return parse


_log_format = _one_word_of("json", "text")


# environment variable → (config key, parser)
ENVIRONMENT: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "SECRET_KEY": ("SECRET_KEY", _text),
    "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", _database_url),
    "MIGRATION_DATABASE_URL": ("MIGRATION_DATABASE_URI", _database_url),
    "DATABASE_CONNECT_TIMEOUT": ("DATABASE_CONNECT_TIMEOUT", _int_at_least(1)),
    "DATABASE_POOL_TIMEOUT": ("DATABASE_POOL_TIMEOUT", _int_at_least(1)),
    "DATABASE_POOL_RECYCLE": ("DATABASE_POOL_RECYCLE", _int_at_least(60)),
    "REDIS_URL": ("REDIS_URL", _redis_url),
    "STRIPE_SECRET_KEY": ("STRIPE_SECRET_KEY", _stripe_key),
    "STRIPE_API_BASE": ("STRIPE_API_BASE", _http_url),
    "STRIPE_WEBHOOK_SECRETS": ("STRIPE_WEBHOOK_SECRETS", _webhook_secrets),
    "STRIPE_API_VERSIONS": ("STRIPE_API_VERSIONS", _api_versions),
    "STRIPE_RATE_LIMIT": ("STRIPE_RATE_LIMIT", _int_at_least(1)),
    "PUBLIC_SUBSCRIPTION_ENABLED": ("PUBLIC_SUBSCRIPTION_ENABLED", _bool),
    "BACKOFFICE_ADMINS_GROUP_ID": ("BACKOFFICE_ADMINS_GROUP_ID", _text),
    "TRUST_PROXY_HEADERS": ("TRUST_PROXY_HEADERS", _bool),
    "TRUSTED_PROXY_ADDRESSES": ("TRUSTED_PROXY_ADDRESSES", _addresses),
    "PROXY_SHARED_SECRET": ("PROXY_SHARED_SECRET", _text),
    "PROXY_SHARED_SECRET_HEADER": ("PROXY_SHARED_SECRET_HEADER", _text),
    "IDENTITY_NAME_HEADER": ("IDENTITY_NAME_HEADER", _text),
    "IDENTITY_ID_HEADER": ("IDENTITY_ID_HEADER", _text),
    "IDENTITY_PRINCIPAL_HEADER": ("IDENTITY_PRINCIPAL_HEADER", _text),
    "LOGIN_URL": ("LOGIN_URL", _text),
    "BACKOFFICE_DEV_LOGIN": ("BACKOFFICE_DEV_LOGIN", _bool),
    "PLAN_ORDER": ("PLAN_ORDER", _plan_order),
    "PLATFORM_CURRENCY": ("PLATFORM_CURRENCY", _currency),
    "SETTLE_SECONDS": ("SETTLE_SECONDS", _int_at_least(0)),
    "BLOB_DIR": ("BLOB_DIR", _text),
    "LOG_LEVEL": ("LOG_LEVEL", _log_level),
    "LOG_FORMAT": ("LOG_FORMAT", _log_format),
    "IN_PROCESS_JOBS": ("IN_PROCESS_JOBS", _one_word_of("threads", "deferred")),
    "SESSION_COOKIE_SECURE": ("SESSION_COOKIE_SECURE", _bool),
    "PROXY_FIX_HOPS": ("PROXY_FIX_HOPS", _int_at_least(0)),
}


def load_config(environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the settings: defaults, then the environment, then explicit overrides (tests)."""
    settings = {key: getattr(Config, key) for key in dir(Config) if key.isupper()}
    for variable, (key, parse) in ENVIRONMENT.items():
        # A boolean set empty means false; any other variable set empty is unset.
        if environment_sets(environ, variable) or (parse is _bool and variable in environ):
            settings[key] = parse(variable, environ[variable])
    settings.update(overrides or {})
    _check(settings)
    return settings


def _check(settings: dict[str, Any]) -> None:
    if settings["STRIPE_API_BASE"] and not settings["STRIPE_SECRET_KEY"]:
        raise ConfigError("STRIPE_API_BASE is set but STRIPE_SECRET_KEY is not: set both or neither")
    if settings["PROXY_SHARED_SECRET"] and not settings["TRUST_PROXY_HEADERS"]:
        raise ConfigError("PROXY_SHARED_SECRET is set but TRUST_PROXY_HEADERS is off: turn it on or unset the secret")
    _check_dev_login(settings)


def _check_dev_login(settings: dict[str, Any]) -> None:
    # The development login makes anyone an admin with one POST: only ever on a machine with no real proxy or money.
    if not settings["BACKOFFICE_DEV_LOGIN"]:
        return
    if settings["TRUST_PROXY_HEADERS"]:
        raise ConfigError("BACKOFFICE_DEV_LOGIN is on together with TRUST_PROXY_HEADERS: "
                          "the development login is for local use only, turn one of them off")
    if re.match(r"^(sk|rk)_live_", settings["STRIPE_SECRET_KEY"] or ""):
        raise ConfigError("BACKOFFICE_DEV_LOGIN is on with a live Stripe key: "
                          "the development login is for test keys only, turn it off")


def environment_sets(environ: Mapping[str, str], variable: str) -> bool:
    """Tell whether `variable` is set to something other than blanks."""
    return bool((environ.get(variable) or "").strip())


# What production must set (what to set it to), and what the development entry point, backoffice/dev.py,
# puts in its place when it is unset. The factory itself never makes either.
REQUIRED = {
    "DATABASE_URL": ("a PostgreSQL URL such as postgresql://user@host/db", "an embedded PostgreSQL under instance/"),
    "SECRET_KEY": ("a long random string, the same on every node", "a key kept in instance/secret_key"),
}


def require_settings(settings: Mapping[str, Any]) -> None:
    """Refuse settings without a database or a secret key, saying what to set and what development does instead."""
    missing = [variable for variable in REQUIRED if not settings[ENVIRONMENT[variable][0]]]
    if missing:
        unset = " and ".join(f"{variable} is not set ({REQUIRED[variable][0]})" for variable in missing)
        instead = " and ".join(REQUIRED[variable][1] for variable in missing)
        raise ConfigError(f"{unset}; for development, `make demo` and `flask --app backoffice.dev` use {instead}")


def create_app_or_exit(config: Mapping[str, Any] | None = None, *, exit_status: int = 2):
    """Build the app for a process entry point; a configuration error ends it with one clear line."""
    import sys

    from backoffice import create_app

    try:
        return create_app(config)
    except ConfigError as error:
        print(f"backoffice: configuration error: {error}", file=sys.stderr)
        raise SystemExit(exit_status) from None
