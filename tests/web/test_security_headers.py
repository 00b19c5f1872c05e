"""The security headers on every response, the session cookie's flags, ProxyFix as far as it is trusted, and the
settings that are refused at start."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from backoffice.config import Config, ConfigError, load_config
from backoffice.dev import development_config
from tests.conftest import ROOT_DIR

HX = {"HX-Request": "true"}
HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
FORWARDED_TLS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


def _static_url(client, headers) -> str:
    page = client.get("/", headers=headers).get_data(as_text=True)
    return re.search(r'src="(/static/js/app\.js\?v=[0-9a-f]{12})"', page).group(1)


def _directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in policy.split("; ")}


def assert_security_headers(response) -> None:
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    policy = _directives(response)
    assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'self'"
    assert re.fullmatch(r"'self' 'nonce-[\w-]{20,}'", policy["script-src"])
    assert re.fullmatch(r"'self' 'nonce-[\w-]{20,}'", policy["style-src"])
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in headers  # plain http


def test_a_page_has_every_header_and_is_never_stored(client, operator_headers):
    response = client.get("/accounts", headers={**operator_headers, **HTML})
    assert response.status_code == 200
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "private, no-store"


def test_a_partial_has_them_too(client, operator_headers):
    response = client.get("/accounts?q=a", headers={**operator_headers, **HX})
    assert response.status_code == 200 and "<html" not in response.get_data(as_text=True)
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("headers", [JSON, HTML, HX])
def test_refusals_and_errors_have_them(client, operator_headers, headers):
    assert_security_headers(client.get("/accounts", headers=headers))  # anonymous: 401 or the redirect
    missing = client.get("/no-such-page", headers={**operator_headers, **headers})
    assert missing.status_code == 404
    assert_security_headers(missing)
    assert missing.headers["Cache-Control"] == "private, no-store"


def test_static_files_keep_their_caching_but_get_the_headers(client, operator_headers):
    with client.get(_static_url(client, operator_headers)) as response:
        assert response.status_code == 200
        assert_security_headers(response)
        assert "no-store" not in response.headers["Cache-Control"] and "immutable" in response.headers["Cache-Control"]


def test_each_response_has_its_own_nonce(client, operator_headers):
    first = _directives(client.get("/", headers=operator_headers))["script-src"]
    second = _directives(client.get("/", headers=operator_headers))["script-src"]
    assert first != second


def test_no_template_renders_inline_script_or_style(client, operator_headers, admin_headers):
    for url in ("/", "/accounts", "/users", "/billing-events", "/invoices", "/jobs", "/audit", "/failed-events"):
        text = client.get(url, headers={**admin_headers, **HTML}).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), url
        assert "<style" not in text and " style=" not in text, url
        assert not re.search(r"\son[a-z]+=", text), url
        assert "javascript:" not in text, url


def test_hsts_only_over_https(client, operator_headers):
    secure = client.get("/", headers=operator_headers, base_url="https://console.example")
    assert secure.headers["Strict-Transport-Security"] == "max-age=63072000"
    assert "Strict-Transport-Security" not in client.get("/", headers=operator_headers).headers


def test_forwarded_proto_is_ignored_without_proxy_fix_hops(client, operator_headers):
    response = client.get("/", headers={**operator_headers, **FORWARDED_TLS})
    assert "Strict-Transport-Security" not in response.headers


def test_forwarded_proto_is_believed_from_the_configured_proxy_only(make_app, db_connection, operator_headers):
    app = make_app(PROXY_FIX_HOPS=1, TRUSTED_PROXY_ADDRESSES=("10.1.0.0/16",))
    with app.test_client() as client:
        proxied = client.get("/me", headers={**operator_headers, **FORWARDED_TLS}, environ_base={"REMOTE_ADDR": "10.1.2.3"})
        # The identity check looks at the proxy's own address, not at the client ProxyFix took from X-Forwarded-For.
        assert proxied.status_code == 200
        assert proxied.headers["Strict-Transport-Security"] == "max-age=63072000"
        outside = client.get("/me", headers={**operator_headers, **JSON, **FORWARDED_TLS, "X-Forwarded-For": "10.1.2.3"},
                             environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert outside.status_code == 401 and "Strict-Transport-Security" not in outside.headers


def test_the_session_cookie_is_secure_httponly_and_lax(make_app, db_connection):
    app = make_app(SESSION_COOKIE_SECURE=True, BACKOFFICE_DEV_LOGIN=True, TRUST_PROXY_HEADERS=False,
                   WTF_CSRF_ENABLED=False)
    with app.test_client() as client:
        response = client.post("/dev/login", data={"identity": "operator", "next": "/"}, base_url="https://localhost")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "secure" in flags and "httponly" in flags and flags["samesite"] == "SameSite=Lax"


def test_secure_cookies_are_the_default_and_development_turns_them_off(tmp_path):
    assert Config.SESSION_COOKIE_SECURE is True and Config.SESSION_COOKIE_HTTPONLY is True
    assert load_config({})["SESSION_COOKIE_SECURE"] is True
    assert load_config({"SESSION_COOKIE_SECURE": "false"})["SESSION_COOKIE_SECURE"] is False
    given = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://x@/y", "SECRET_KEY": "k"}
    assert development_config(given, {}, tmp_path)["SESSION_COOKIE_SECURE"] is False
    # An operator who serves the development app over https keeps the flag.
    assert "SESSION_COOKIE_SECURE" not in development_config(given, {"SESSION_COOKIE_SECURE": "true"}, tmp_path)


def test_proxy_fix_hops_setting():
    assert load_config({})["PROXY_FIX_HOPS"] == 0
    assert load_config({"PROXY_FIX_HOPS": "2"})["PROXY_FIX_HOPS"] == 2
    with pytest.raises(ConfigError, match="PROXY_FIX_HOPS"):
        load_config({"PROXY_FIX_HOPS": "-1"})


@pytest.mark.parametrize(("environ", "message"), [
    ({"TRUST_PROXY_HEADERS": "true"}, "BACKOFFICE_DEV_LOGIN is on together with TRUST_PROXY_HEADERS"),
    ({"STRIPE_SECRET_KEY": "sk_live_abc123"}, "BACKOFFICE_DEV_LOGIN is on with a live Stripe key"),
    ({"STRIPE_SECRET_KEY": "rk_live_abc123"}, "BACKOFFICE_DEV_LOGIN is on with a live Stripe key"),
])
def test_the_dev_login_is_refused_beside_a_proxy_or_a_live_key(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"BACKOFFICE_DEV_LOGIN": "1", **environ})
    # Each alone is fine, and so is the dev login with a test key.
    load_config(environ)
    load_config({"BACKOFFICE_DEV_LOGIN": "1", "STRIPE_SECRET_KEY": "sk_test_abc123"})


def test_the_refusal_is_one_line_at_start():
    environment = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "SECRET_KEY": "k",
                   "BACKOFFICE_DEV_LOGIN": "1", "TRUST_PROXY_HEADERS": "1"}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT_DIR, env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "backoffice: configuration error: BACKOFFICE_DEV_LOGIN is on together with TRUST_PROXY_HEADERS: "
        "the development login is for local use only, turn one of them off"]


def test_with_hops_and_no_address_list_every_peer_is_the_proxy(make_app, db_connection, operator_headers):
    app = make_app(PROXY_FIX_HOPS=1)
    with app.test_client() as client:
        response = client.get("/healthz", headers=FORWARDED_TLS)
        assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
