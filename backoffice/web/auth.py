"""Proxy-header sign-in through Flask-Login, the development login, and admin_required."""
from __future__ import annotations

import hmac
import ipaddress
import re
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
from backoffice.web.htmx import current_page_url, is_htmx_request, send_browser_to
from backoffice.web.security import peer_address

F = TypeVar("F", bound=Callable[..., Any])

DEV_IDENTITIES = {
    "admin": ("admin@backoffice.local", "Ada Admin", True),
    "operator": ("operator@backoffice.local", "Oscar Operator", False),
}
DEV_ADMINS_GROUP = "backoffice-admins"
# Longer than any real principal id, e-mail or display name; anything longer is not a principal we believe.
MAX_IDENTITY_FIELD = 512
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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
            # The proxy is whoever opened the connection, not the client ProxyFix reads from X-Forwarded-For.
            remote = ipaddress.ip_address(peer_address(req.environ) or "")
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
    if identity is None or not _plausible(identity):
        return None
    return Operator(identity, record_operator(identity, datetime.now(UTC)))


def _plausible(identity: Identity) -> bool:
    """A principal with control characters (PostgreSQL refuses NUL in text) or absurd lengths is no one."""
    fields = (identity.principal_id, identity.name, identity.display_name, *identity.groups)
    return all(len(value) <= MAX_IDENTITY_FIELD and not CONTROL_CHARACTERS.search(value) for value in fields)


def login_url(next_path: str) -> str:
    """Return where a signed-out browser is sent: the dev login or the proxy's login."""
    if current_app.config["BACKOFFICE_DEV_LOGIN"]:
        return "/dev/login?" + urlencode({"next": next_path})
    return current_app.config["LOGIN_URL"] + "?" + urlencode({"post_login_redirect_uri": next_path})


def unauthorized() -> Any:
    """Send browsers to sign in and answer 401 to everything else; htmx is told to take the page there too."""
    if wants_html(request):
        return redirect(login_url(request.full_path.rstrip("?")))
    response = jsonify(error="authentication required")
    response.status_code = 401
    if is_htmx_request():
        # The session ended under an open page, and htmx would swallow the 401: the browser goes to sign in and
        # comes back to the page it showed (not to the partial it asked for).
        send_browser_to(response, login_url(page_path(current_page_url(), request.host)))
    return response


def page_path(url: str | None, host: str) -> str:
    """The path and query of an address on this host, or / for anything else."""
    if not url:
        return "/"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "/"
    if parts.scheme not in {"http", "https"} or parts.netloc != host:
        return "/"
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


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
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    # Browsers read a backslash as a slash and drop tabs and newlines, so `/\\evil` and `/\t/evil` mean `//evil`;
    # CR/LF would also split the Location header.
    if "\\" in target or CONTROL_CHARACTERS.search(target):
        return "/"
    try:
        parts = urlsplit(target)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc:
        return "/"
    return target


def init_app(app: Flask) -> None:
    """Wire Flask-Login to the proxy headers and guard every non-public view."""
    login_manager.init_app(app)
    login_manager.request_loader(load_operator)
    login_manager.unauthorized_handler(unauthorized)
    app.before_request(require_operator)
