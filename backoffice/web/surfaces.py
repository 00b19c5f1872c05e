"""The operator surfaces. Until a surface is built its blueprint serves a page that says so plainly."""
from flask import Blueprint, abort, current_app
from flask_babel import lazy_gettext as _l

from backoffice.web.htmx import render_page_or_partial


def placeholder_blueprint(name: str, url_prefix: str, title: object, billing: bool = False) -> Blueprint:
    """Return a blueprint whose index page states that the surface is not built yet."""
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    @bp.get("" if url_prefix else "/")
    def index():
        if billing and not current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"]:
            abort(404)
        return render_page_or_partial("surfaces/placeholder.html", "surfaces/_placeholder.html", title=title)

    index.__doc__ = f"Show the {name} surface."
    return bp


def surface_blueprints() -> list[Blueprint]:
    """Return one blueprint per operator surface."""
    return [
        placeholder_blueprint("users", "/users", _l("Users")),
    ]
