"""Flask extensions, created unbound and initialised by the factory."""
from collections.abc import Mapping
from typing import Any

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData

# Constraint names are part of the schema: Alembic needs them stable to compare and to drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate(compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def engine_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the SQLAlchemy engine options: the configured ones, with the pool's outage settings filled in.

    - `pool_pre_ping`: a connection the server dropped (a restart, a failover) is noticed at checkout and
      replaced, so the first request after the database returns succeeds instead of failing once.
    - `connect_timeout` (libpq): a server that does not answer fails a request in seconds, not after the
      operating system's minutes of SYN retries, so pages and webhooks answer 503 while it is away.
    - `pool_size`, `max_overflow`: the Procfile's 16 threads per gunicorn worker and the webhook intake's writer
      fit in the pool (10 + 10 overflow), so a page never waits for another page's connection.
    - `pool_timeout`: a request waits that long for a free connection, then answers 503; since every thread fits
      in the pool, a longer wait would only hide a stuck database.
    - `pool_recycle`: no connection lives longer than that, so server-side or middlebox idle limits and a
      replaced primary never leave old connections in the pool, which pre-ping would only catch one by one.
    """
    options = dict(settings["SQLALCHEMY_ENGINE_OPTIONS"])
    options.setdefault("pool_pre_ping", True)
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 10)
    options.setdefault("pool_timeout", settings["DATABASE_POOL_TIMEOUT"])
    options.setdefault("pool_recycle", settings["DATABASE_POOL_RECYCLE"])
    options["connect_args"] = {"connect_timeout": settings["DATABASE_CONNECT_TIMEOUT"],
                               **options.get("connect_args", {})}
    return options
