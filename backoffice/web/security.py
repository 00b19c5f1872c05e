"""Response headers that keep the console out of foreign frames and foreign scripts, and the proxy's view of TLS.

Every response says: our own scripts and styles only (htmx and Pico are vendored under static/), no framing
(clickjacking of the admin forms), no MIME sniffing, no referrer to other sites. Pages and partials carry
customer data, so they are never kept in a cache; versioned static files keep their year-long caching.
HSTS is sent only on a request that arrived over TLS, which behind a proxy only ProxyFix can tell.
"""
from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

HSTS = "max-age=63072000"
# Same-origin keeps the full URL for our own POSTs (Flask-WTF checks the Referer over https) and gives other
# sites, such as the Stripe dashboard a link opens, nothing of our URLs, which name customers.
REFERRER_POLICY = "same-origin"


def csp_nonce() -> str:
    """Return this request's nonce, for a `<script nonce>` or `<style nonce>` a template cannot avoid."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def content_security_policy(nonce: str) -> str:
    """Return the policy: this origin's files and this request's nonce, nothing inline, no frames, no plugins."""
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        # Pico draws its checkboxes and chevrons as data: SVG backgrounds.
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def add_security_headers(response: Response) -> Response:
    """Put the security headers on every response, static files included; pages and partials are never stored."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce()))
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", REFERRER_POLICY)
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    # A view that chose its own caching keeps it (the images under /logos and /avatars: private, revalidated).
    if request.endpoint != "static" and "Cache-Control" not in headers:
        headers["Cache-Control"] = "private, no-store"
    return response


class TrustedProxyFix:
    """Apply ProxyFix only to requests whose peer is a configured proxy; anyone else's X-Forwarded-* is ignored.

    Without TRUSTED_PROXY_ADDRESSES every peer counts as the proxy (the platform's front end is the only way in).
    """

    def __init__(self, app: Any, hops: int, addresses: tuple[str, ...]):
        self.direct = app
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops)
        self.networks = tuple(ipaddress.ip_network(address, strict=False) for address in addresses)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return (self.fixed if self._from_proxy(environ) else self.direct)(environ, start_response)

    def _from_proxy(self, environ: dict[str, Any]) -> bool:
        if not self.networks:
            return True
        try:
            peer = ipaddress.ip_address(environ.get("REMOTE_ADDR") or "")
        except ValueError:
            return False
        return any(peer in network for network in self.networks)


def peer_address(environ: dict[str, Any]) -> str | None:
    """Return the address of whoever opened the connection, before ProxyFix rewrote it to the client's."""
    original = environ.get("werkzeug.proxy_fix.orig") or {}
    return original.get("REMOTE_ADDR") or environ.get("REMOTE_ADDR")


def init_app(app: Flask) -> None:
    """Send the headers on every response, give templates the nonce, and believe the proxy as far as configured."""
    app.after_request(add_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    hops = app.config["PROXY_FIX_HOPS"]
    if hops:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, hops, app.config["TRUSTED_PROXY_ADDRESSES"])  # type: ignore[method-assign]
