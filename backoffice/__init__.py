"""Backoffice: the operator console of a multi-tenant SaaS that bills through Stripe."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask application: configuration, extensions, blueprints, CLI, logging."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    configure_settings(app, config)
    configure_logging(app)
    configure_extensions(app)
    configure_web(app)
    configure_cli(app)
    return app


def configure_settings(app: Flask, config: Mapping[str, Any] | None) -> None:
    """Load settings from the environment, then `config`; refuse to go on without a database or a secret key."""
    from backoffice.config import load_config, require_settings

    settings = load_config(os.environ, config)
    # Only read, never made here: development's embedded PostgreSQL and kept key come from backoffice/dev.py
    # before the factory runs, so building an app starts no server and writes no file.
    require_settings(settings)
    app.config.from_mapping(settings)
    if not app.config["BLOB_DIR"]:
        app.config["BLOB_DIR"] = str(Path(app.instance_path) / "blobs")


def configure_logging(app: Flask) -> None:
    """Log one JSON line per request and per job."""
    from backoffice import logs

    logs.init_app(app)


def configure_extensions(app: Flask) -> None:
    """Bind the extensions of extensions.py to this app."""
    from backoffice import models  # noqa: F401  (every table registered before Migrate compares)
    from backoffice.extensions import csrf, db, engine_options, migrate

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)


def configure_web(app: Flask) -> None:
    """Register identity, i18n, htmx hooks, metrics and the blueprints."""
    from backoffice.web import (
        auth,
        errors,
        formatting,
        htmx,
        i18n,
        metrics,
        request_text,
        security,
        shell,
        static_assets,
    )
    from backoffice.web.accounts.views import bp as accounts_bp
    from backoffice.web.audit.views import bp as audit_bp
    from backoffice.web.banners.views import bp as banners_bp
    from backoffice.web.billing_events.views import bp as billing_events_bp
    from backoffice.web.blobs.views import bp as blobs_bp
    from backoffice.web.dashboard.views import bp as dashboard_bp
    from backoffice.web.failed_events.views import bp as failed_events_bp
    from backoffice.web.health.views import bp as health_bp
    from backoffice.web.invoices.views import bp as invoices_bp
    from backoffice.web.jobs.views import bp as jobs_bp
    from backoffice.web.operator.views import bp as operator_bp
    from backoffice.web.saas_metrics.views import bp as saas_metrics_bp
    from backoffice.web.search.views import bp as search_bp
    from backoffice.web.users.views import bp as users_bp
    from backoffice.web.webhooks import intake as webhook_intake

    auth.init_app(app)
    request_text.init_app(app)
    i18n.init_app(app)
    htmx.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    shell.init_app(app)
    formatting.init_app(app)
    static_assets.init_app(app)
    security.init_app(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(operator_bp)
    app.register_blueprint(failed_events_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(blobs_bp)
    app.register_blueprint(banners_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(jobs_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(billing_events_bp)
    app.register_blueprint(invoices_bp)
    app.register_blueprint(users_bp)
    app.register_blueprint(search_bp)
    app.register_blueprint(saas_metrics_bp)
    # Outermost: Stripe's deliveries are answered before any of Flask's per-request work (web/webhooks/intake.py).
    webhook_intake.init_app(app)


def configure_cli(app: Flask) -> None:
    """Add the flask commands."""
    from backoffice import cli

    cli.init_app(app)
