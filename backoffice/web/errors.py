"""Error pages for browsers and JSON errors for everything else."""
import logging

import psycopg
from flask import Flask, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from backoffice.extensions import db, login_manager
from backoffice.web.auth import wants_html
from backoffice.web.htmx import is_partial_request

log = logging.getLogger(__name__)

# Long enough that a room of open tabs does not hammer a recovering server, short enough that an operator
# watching the page sees it come back within a few seconds of the database.
RETRY_AFTER_SECONDS = 10

# Connection refused or dropped, the server shutting down, no connection free in the pool: the database is
# out of reach, not the request at fault. psycopg's own classes are listed for code that uses it directly.
UNREACHABLE = (OperationalError, InterfaceError, PoolTimeoutError, psycopg.OperationalError, psycopg.InterfaceError)


def _messages() -> dict[int, str]:
    return {
        400: _("The request was not understood."),
        403: _("You need to be an admin to do this."),
        404: _("There is nothing at this address."),
        405: _("This address does not accept that method."),
        413: _("The request is too large."),
        500: _("Something went wrong on our side. It has been logged."),
        503: _("A service Backoffice depends on is unavailable. Try again shortly."),
    }


def handle_http_error(error: HTTPException):
    """Render the error as a page for browsers and as JSON for other clients."""
    code = error.code or 500
    # A view's own description says what exactly was wrong; werkzeug's stock text says less than ours.
    specific = error.description if error.description != type(error).description else None
    message = specific or _messages().get(code, error.description or "")
    if isinstance(error, CSRFError):
        message = _("The form has expired or lacks its security token. Reload the page and try again.")
    if wants_html(request):
        return render_template("errors/error.html", code=code, message=message), code
    return jsonify(error=message, status=code), code


def database_unreachable(error: BaseException) -> bool:
    """Tell whether `error` means PostgreSQL could not be reached, rather than that a statement was wrong."""
    return isinstance(error, UNREACHABLE) or (isinstance(error, DBAPIError) and error.connection_invalidated)


def handle_database_error(error: Exception):
    """Answer 503 while PostgreSQL is out of reach: a page that retries by itself, or JSON for HTMX and APIs."""
    if not database_unreachable(error):
        # A bad statement or bad data is a bug or a bad input, not an outage: the generic 500 path logs it.
        raise error
    log.warning("database unreachable during %s %s: %s", request.method, request.path,
                str(error).splitlines()[0] if str(error) else type(error).__name__)
    # The failed transaction must not leak into the error page or, through the pool, into the next request.
    db.session.rollback()
    if "_login_user" not in g:
        # The operator is looked up (and their last visit recorded) in the database: when that is what failed,
        # the page is rendered for nobody rather than asking the dead database again from the templates.
        g._login_user = login_manager.anonymous_user()
    message = _("The database cannot be reached. Try again shortly.")
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if wants_html(request) and not is_partial_request():
        # Only a GET can be safely repeated by the browser on its own; a form is sent again by the operator.
        retry_url = request.full_path.rstrip("?") if request.method in {"GET", "HEAD"} else None
        page = render_template("errors/database.html", message=message, retry_after=RETRY_AFTER_SECONDS,
                               retry_url=retry_url)
        return page, 503, headers
    return jsonify(error=message, status=503), 503, headers


def handle_queue_error(error: RedisError):
    """Answer 503 when Redis (the job queue) fails a request: a Sync or sweep cannot be queued or followed now, and
    the request path never waits for it (backoffice/jobs.py gives up after REDIS_SOCKET_TIMEOUT)."""
    log.warning("job queue unreachable during %s %s: %s", request.method, request.path, type(error).__name__)
    message = _("The job queue cannot be reached. Try again shortly.")
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if wants_html(request) and not is_partial_request():
        return render_template("errors/error.html", code=503, message=message), 503, headers
    return jsonify(error=message, status=503), 503, headers


def init_app(app: Flask) -> None:
    """Handle every HTTP error the same way, and a database or job queue out of reach as a 503."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(PoolTimeoutError, handle_database_error)
    app.register_error_handler(psycopg.Error, handle_database_error)
    app.register_error_handler(RedisError, handle_queue_error)
