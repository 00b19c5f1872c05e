"""The operator's own routes: who am I, the development login, and preferences."""
from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_login import current_user

from backoffice.operators.operations import set_preference
from backoffice.web.auth import DEV_IDENTITIES, public, safe_next

bp = Blueprint("operator", __name__)


@bp.get("/me")
def me():
    """Describe the signed-in operator as JSON."""
    identity = current_user.identity
    return jsonify(
        displayName=identity.display_name,
        email=identity.name,
        isAdmin=identity.is_admin,
        groups=list(identity.groups),
    )


def _dev_login_enabled() -> None:
    if not current_app.config["BACKOFFICE_DEV_LOGIN"]:
        abort(404)


@bp.get("/dev/login")
@public
def dev_login():
    """Offer the development identities."""
    _dev_login_enabled()
    return render_template("operator/dev_login.html", next=safe_next(request.args.get("next")))


@bp.post("/dev/login")
@public
def dev_login_submit():
    """Sign in as the chosen development identity."""
    _dev_login_enabled()
    choice = request.form.get("identity", "")
    if choice not in DEV_IDENTITIES:
        flash(_("Choose one of the offered identities."), "error")
        return render_template("operator/dev_login.html", next=safe_next(request.form.get("next"))), 400
    session.clear()
    session["dev_identity"] = choice
    return redirect(safe_next(request.form.get("next")), code=303)


@bp.post("/dev/logout")
@public
def dev_logout():
    """Forget the development identity."""
    _dev_login_enabled()
    session.clear()
    return redirect("/dev/login", code=303)


@bp.post("/preferences/kiosk")
def toggle_kiosk():
    """Turn Kiosk mode on or off for this operator."""
    set_preference(current_user.get_id(), "kiosk", not current_user.kiosk)
    return redirect(safe_next(request.form.get("next")), code=303)


@bp.post("/preferences/locale")
def choose_locale():
    """Remember the operator's language."""
    locale = request.form.get("locale", "")
    if locale not in current_app.config["LANGUAGES"]:
        flash(_("Unknown language: %(locale)s", locale=locale), "error")
        return redirect(safe_next(request.form.get("next")), code=303)
    set_preference(current_user.get_id(), "locale", locale)
    return redirect(safe_next(request.form.get("next")), code=303)


# "system" leaves the page to the browser's prefers-color-scheme; light and dark pin Pico's data-theme.
THEMES = ("system", "light", "dark")


@bp.post("/preferences/theme")
def choose_theme():
    """Remember whether the console is light, dark or follows the system setting."""
    theme = request.form.get("theme", "")
    if theme not in THEMES:
        flash(_("Unknown theme: %(theme)s", theme=theme), "error")
        return redirect(safe_next(request.form.get("next")), code=303)
    set_preference(current_user.get_id(), "theme", theme)
    return redirect(safe_next(request.form.get("next")), code=303)
