"""flask commands. Later features add their groups (billing, demo) here."""
from __future__ import annotations

import re
import signal
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from backoffice.demo.vat import parse_vat_rates
from backoffice.extensions import db
from backoffice.fx.commands import fx_group
from backoffice.readiness import check_database, check_redis

if TYPE_CHECKING:  # the sandbox is imported inside the commands only, when they run
    from backoffice.stripe_sandbox import SandboxSettings

SECRET_KEY = re.compile(r"^sk_test_\w+$")


@click.command("ready")
@with_appcontext
def ready_command() -> None:
    """Print the readiness checks and fail when Backoffice is not ready."""
    checks = check_database(db.session, current_app.extensions["migrate"].directory)
    checks["redis"] = check_redis(current_app.config["REDIS_URL"])
    for name, state in checks.items():
        click.echo(f"{name}: {state}")
    if checks["database"] != "ok" or checks["migrations"] != "at head":
        raise SystemExit(1)


sandbox_group = AppGroup("sandbox", help="The local Stripe sandbox: serve it, move its clock.")


def _vat_option(ctx: click.Context, param: click.Parameter, value: str) -> dict[str, Decimal]:
    return parse_vat_rates(value or "")


def _secret_key_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # Backoffice accepts only Stripe-shaped keys in STRIPE_SECRET_KEY; a test key says "not live".
    if not SECRET_KEY.match(value):
        raise click.BadParameter(f"{value!r} is not a test secret key such as sk_test_sandbox")
    return value


@sandbox_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="A loopback address to listen on.")
@click.option("--port", default=12111, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, writable=True),
              help="Keep the sandbox's state in this JSON file (loaded if present); default: in memory.")
@click.option("--vat", "tax_rates", envvar="SANDBOX_VAT_RATES", default="", callback=_vat_option,
              help="VAT rate per customer country, e.g. DK=25,DE=19 (env SANDBOX_VAT_RATES).")
@click.option("--secret-key", default="sk_test_sandbox", show_default=True, callback=_secret_key_option,
              help="The API key clients must send.")
@click.option("--api-version", default=None, help="The account's API version (basil or later).")
@click.option("--seed", type=int, default=None, help="Make generated ids repeatable.")
@click.option("--clock", type=click.IntRange(0), default=None,
              help="Start a new sandbox's clock at this Unix time (default: now), as `flask demo load` does.")
def sandbox_serve(host: str, port: int, state_path: str | None, tax_rates: dict[str, Decimal], secret_key: str,
                  api_version: str | None, seed: int | None, clock: int | None) -> None:
    """Run the Stripe sandbox in the foreground until interrupted."""
    from backoffice.stripe_sandbox import Sandbox, SandboxSettings
    from backoffice.stripe_sandbox.loopback import is_loopback_host
    from backoffice.stripe_sandbox.server import SandboxServer

    if not is_loopback_host(host):
        raise click.BadParameter(f"{host!r} is not a loopback address; the sandbox serves this machine only",
                                 param_hint="--host")
    options: dict[str, object] = {"api_version": api_version} if api_version else {}
    if clock is not None:
        options["start_time"] = clock
    try:
        settings = SandboxSettings(currency=current_app.config["PLATFORM_CURRENCY"], tax_rates=tax_rates,
                                   secret_key=secret_key, seed=seed, state_path=state_path, **options)
        server = SandboxServer(Sandbox(settings), host, port)
    except (ValueError, OSError) as error:  # bad settings, an unreadable state file, a port in use
        raise click.ClickException(str(error)) from error
    _print_banner(server.url, settings)
    _interrupt_on_sigterm()
    try:
        server.serve_forever()  # returns on Ctrl+C or SIGTERM, having saved the state
    except KeyboardInterrupt:
        pass  # werkzeug swallows an interrupt while serving, but not one that lands between two polls
    click.echo("Sandbox stopped.")


def _interrupt_on_sigterm() -> None:
    """Let SIGTERM end `serve` as Ctrl+C does, so that the state is saved before the process exits."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _print_banner(url: str, settings: SandboxSettings) -> None:
    click.echo(f"Stripe sandbox on {url}")
    vat = ", ".join(f"{country} {rate}%" for country, rate in sorted(settings.tax_rates.items())) or "none"
    click.echo(f"API version {settings.api_version}, currency {settings.currency}, VAT {vat}, "
               f"state {settings.state_path or 'in memory'}")
    click.echo(f"Secret key: {settings.secret_key}")
    click.echo("Point Backoffice at it:")
    click.echo(f"  export STRIPE_API_BASE={url}")
    click.echo(f"  export STRIPE_SECRET_KEY={settings.secret_key}")
    click.echo("Press Ctrl+C to stop.")


@sandbox_group.command("advance")
@click.option("--days", type=click.IntRange(min=0), required=True, help="How many days to move the clock by.")
def sandbox_advance(days: int) -> None:
    """Move the running sandbox's clock forward (renewals, retries and schedule phases fall due)."""
    import stripe

    from backoffice.stripe_sandbox.loopback import is_loopback_host

    base, key = current_app.config["STRIPE_API_BASE"], current_app.config["STRIPE_SECRET_KEY"]
    if not base:
        raise click.ClickException("STRIPE_API_BASE is not set: start `flask sandbox serve` and export the "
                                   "STRIPE_API_BASE and STRIPE_SECRET_KEY it prints.")
    if not is_loopback_host(urlsplit(base).hostname or ""):
        raise click.ClickException(f"STRIPE_API_BASE={base} is not a sandbox on this machine.")
    client = stripe.StripeClient(key, base_addresses={"api": base}, max_network_retries=0)
    try:
        response = client.raw_request("post", "/v1/test_helpers/sandbox_clock/advance", days=days)
    except stripe.StripeError as error:
        raise click.ClickException(f"the sandbox refused: {error.user_message or error}") from error
    clock = client.deserialize(response, api_mode="V1")
    moved_to = datetime.fromtimestamp(clock["frozen_time"], UTC)
    click.echo(f"Sandbox clock now {moved_to.isoformat()} ({clock['frozen_time']}).")


def init_app(app: Flask) -> None:
    """Register the commands."""
    from backoffice import database_roles
    from backoffice.billing.commands import billing_group
    from backoffice.demo.commands import demo_group
    from backoffice.demo.prove_command import prove_command
    from backoffice.read_models.commands import init_app as init_read_model_commands

    app.cli.add_command(ready_command)
    app.cli.add_command(sandbox_group)
    app.cli.add_command(demo_group)
    billing_group.add_command(prove_command)
    app.cli.add_command(billing_group)
    app.cli.add_command(fx_group)
    init_read_model_commands(app)
    database_roles.init_app(app)
