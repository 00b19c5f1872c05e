"""Error pages for browsers and JSON errors for everything else."""
from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from backoffice.web.auth import wants_html


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


def init_app(app: Flask) -> None:
    """Handle every HTTP error the same way."""
    app.register_error_handler(HTTPException, handle_http_error)
