"""Alembic environment for Flask-Migrate: the app's engine and the models' metadata."""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name:
    # Keep the app's own loggers alive when migrations run inside a process (tests, release).
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

migrate_state = current_app.extensions["migrate"]
target_metadata = migrate_state.db.metadata


def skip_empty_autogenerate(context_, revision, directives):
    """Write no revision file when autogenerate finds nothing to do."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        log.info("No changes in schema detected.")


def owner_engine():
    """The engine of the schema's owner: MIGRATION_DATABASE_URL, else (warned) the app's own DATABASE_URL.

    The app's role owns nothing (migration 0016), so it could not create or alter a table.
    """
    owner = current_app.config.get("MIGRATION_DATABASE_URI")
    if owner:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool

        # Two URLs can drift apart (a script pointing DATABASE_URL at a scratch database, the environment still
        # naming the real one): migrating a database the app does not use is never what was meant.
        ours, theirs = make_url(owner).database, migrate_state.db.engine.url.database
        if ours != theirs:
            raise SystemExit(f"MIGRATION_DATABASE_URL names database {ours!r} but DATABASE_URL {theirs!r}: "
                             "point both at the same database")
        return create_engine(owner, poolclass=NullPool)
    log.warning("MIGRATION_DATABASE_URL is not set: migrating as DATABASE_URL's role, which must then own the schema")
    return migrate_state.db.engine


def run_offline() -> None:
    """Emit SQL for the migrations without connecting."""
    url = owner_engine().url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the app's database."""
    options = dict(migrate_state.configure_args)
    options.setdefault("process_revision_directives", skip_empty_autogenerate)
    with owner_engine().connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
