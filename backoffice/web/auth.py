"""Proxy-header sign-in through Flask-Login, the development login, and admin_required."""
from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from flask import Flask, Request, abort, current_app, jsonify, redirect, request, session
from flask_login import UserMixin, current_user

from backoffice.extensions import login_manager
from backoffice.operators.identity import Identity, encode_principal, identity_from_headers
from backoffice.operators.operations import record_operator

F = TypeVar("F", bound=Callable[..., Any])

DEV_IDENTITIES = {
    "admin": ("admin@backoffice.local", "Ada Admin", True),
    "operator": ("operator@backoffice.local", "Oscar Operator", False),
}
DEV_ADMINS_GROUP = "backoffice-admins"


class Operator(UserMixin):
    """The signed-in operator for this request."""

    def __init__(self, identity: Identity, preferences: dict[str, Any]):
        self.identity = identity
        self.preferences = preferences

    def get_id(self) -> str:
        return self.identity.principal_id

    @property
    def is_admin(self) -> bool:
        return self.identity.is_admin

    @property
    def kiosk(self) -> bool:
        return bool(self.preferences.get("kiosk"))


def public(view: F) -> F:
    """Mark a view as reachable without a signed-in operator."""
    view.public = True  # type: ignore[attr-defined]
    return view


def admin_required(view: F) -> F:
    """Answer 403 to an operator who is not an admin."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def wants_html(req: Request) -> bool:
    """Tell whether the client is a browser asking for a page (as Easy Auth decides it)."""
    return "text/html" in req.headers.get("Accept", "")


def proxy_is_trusted(req: Request, config: dict[str, Any]) -> bool:
    """Tell whether this request's identity headers may be believed."""
    if not config["TRUST_PROXY_HEADERS"]:
        return False
    addresses = config["TRUSTED_PROXY_ADDRESSES"]
    if addresses:
        try:
            remote = ipaddress.ip_address(req.remote_addr or "")
        except ValueError:
            return False
        if not any(remote in ipaddress.ip_network(network, strict=False) for network in addresses):
            return False
    secret = config["PROXY_SHARED_SECRET"]
    if secret:
        presented = req.headers.get(config["PROXY_SHARED_SECRET_HEADER"], "")
        if not hmac.compare_digest(presented.encode(), secret.encode()):
            return False
    return True


def dev_identity_headers(choice: str, config: dict[str, Any]) -> dict[str, str]:
    """Return the headers the proxy would send for a development identity."""
    email, display_name, admin = DEV_IDENTITIES[choice]
    claims = [("name", display_name)]
    if admin:
        claims.append(("groups", config["BACKOFFICE_ADMINS_GROUP_ID"] or DEV_ADMINS_GROUP))
    return {
        config["IDENTITY_NAME_HEADER"]: email,
        config["IDENTITY_ID_HEADER"]: f"dev-{choice}",
        config["IDENTITY_PRINCIPAL_HEADER"]: encode_principal(claims),
    }


def load_operator(req: Request) -> Operator | None:
    """Flask-Login request loader: the operator named by trusted proxy headers or the dev login."""
    config = current_app.config
    headers: Any = None
    if config["BACKOFFICE_DEV_LOGIN"] and session.get("dev_identity") in DEV_IDENTITIES:
        headers = dev_identity_headers(session["dev_identity"], config)
    elif proxy_is_trusted(req, config):
        headers = req.headers
    if headers is None:
        return None
    identity = identity_from_headers(
        headers,
        name_header=config["IDENTITY_NAME_HEADER"],
        id_header=config["IDENTITY_ID_HEADER"],
        principal_header=config["IDENTITY_PRINCIPAL_HEADER"],
        admins_group_id=config["BACKOFFICE_ADMINS_GROUP_ID"],
    )
    if identity is None:
        return None
    return Operator(identity, record_operator(identity, datetime.now(UTC)))


def login_url(next_path: str) -> str:
    """Return where a signed-out browser is sent: the dev login or the proxy's login."""
    if current_app.config["BACKOFFICE_DEV_LOGIN"]:
        return "/dev/login?" + urlencode({"next": next_path})
    return current_app.config["LOGIN_URL"] + "?" + urlencode({"post_login_redirect_uri": next_path})


def unauthorized() -> Any:
    """Send browsers to sign in and answer 401 to everything else."""
    if wants_html(request):
        return redirect(login_url(request.full_path.rstrip("?")))
    return jsonify(error="authentication required"), 401


def require_operator() -> Any:
    """Refuse every view not marked public to a request with no operator."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, "public", False) or request.endpoint == "static":
        return None
    if not current_user.is_authenticated:
        return unauthorized()
    return None


def safe_next(target: str | None) -> str:
    """Return a same-site path to go back to, never another host."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def init_app(app: Flask) -> None:
    """Wire Flask-Login to the proxy headers and guard every non-public view."""
    login_manager.init_app(app)
    login_manager.request_loader(load_operator)
    login_manager.unauthorized_handler(unauthorized)
    app.before_request(require_operator)
