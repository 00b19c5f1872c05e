"""Proxy-header identity, admin rules, the dev login and CSRF (DESIGN §6)."""
import base64

import pytest
from flask import Blueprint

from backoffice.operators.models import Operator
from backoffice.web.auth import admin_required
from tests.conftest import ADMINS_GROUP, proxy_headers

HTML = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}


def test_no_identity_redirects_browsers_to_the_login_url(client):
    response = client.get("/accounts?plan=premium", headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"] == "/.auth/login/aad?post_login_redirect_uri=%2Faccounts%3Fplan%3Dpremium"


def test_no_identity_is_401_for_json(client):
    response = client.get("/me", headers=JSON)
    assert response.status_code == 401
    assert response.get_json() == {"error": "authentication required"}


def test_valid_principal_is_signed_in(client, operator_headers):
    response = client.get("/me", headers={**operator_headers, **JSON})
    assert response.status_code == 200
    assert response.get_json() == {
        "displayName": "Olga Operator", "email": "operator@example.com", "isAdmin": False, "groups": [],
    }
    assert client.get("/", headers={**operator_headers, **HTML}).status_code == 200


def test_admin_from_groups_claim(client, admin_headers):
    me = client.get("/me", headers=admin_headers).get_json()
    assert me["isAdmin"] is True
    assert me["groups"] == [ADMINS_GROUP]


def test_repeated_groups_and_name_fallback(client):
    headers = proxy_headers("x@example.com", groups=("readers", ADMINS_GROUP))
    me = client.get("/me", headers=headers).get_json()
    assert me == {"displayName": "x@example.com", "email": "x@example.com", "isAdmin": True,
                  "groups": ["readers", ADMINS_GROUP]}


def test_no_admins_group_configured_means_nobody_is_admin(client, settings, admin_headers):
    settings(BACKOFFICE_ADMINS_GROUP_ID=None)
    assert client.get("/me", headers=admin_headers).get_json()["isAdmin"] is False


@pytest.mark.parametrize(
    "garbage",
    ["%%%not-base64%%%", base64.b64encode(b"{not json").decode(), base64.b64encode(b"[1,2]").decode(), ""],
)
def test_garbage_principal_is_treated_as_no_claims(client, garbage):
    headers = {"X-MS-CLIENT-PRINCIPAL-NAME": "g@example.com", "X-MS-CLIENT-PRINCIPAL": garbage}
    response = client.get("/me", headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"displayName": "g@example.com", "email": "g@example.com", "isAdmin": False, "groups": []}


def test_blank_principal_name_is_no_identity(client):
    assert client.get("/me", headers={"X-MS-CLIENT-PRINCIPAL-NAME": "  ", **JSON}).status_code == 401


@pytest.fixture
def admin_app(make_app):
    """An app with one admin-only route, as later surfaces add them."""
    app = make_app()
    bp = Blueprint("admin_probe", __name__)

    @bp.post("/admin-probe")
    @admin_required
    def probe():
        return {"ok": True}

    app.register_blueprint(bp)
    app.config["WTF_CSRF_ENABLED"] = False
    return app


def test_non_admin_gets_403_on_admin_route(admin_app, db_session, operator_headers, admin_headers):
    with admin_app.test_client() as client:
        assert client.post("/admin-probe", headers={**operator_headers, **JSON}).status_code == 403
        forbidden_page = client.post("/admin-probe", headers={**operator_headers, **HTML})
        assert forbidden_page.status_code == 403
        assert b"You need to be an admin" in forbidden_page.data
        assert client.post("/admin-probe", headers=admin_headers).get_json() == {"ok": True}
        assert client.post("/admin-probe", headers=JSON).status_code == 401


def test_headers_ignored_when_proxy_not_trusted(client, settings, admin_headers):
    settings(TRUST_PROXY_HEADERS=False)
    assert client.get("/me", headers={**admin_headers, **JSON}).status_code == 401


def test_headers_only_from_trusted_addresses(client, settings, operator_headers):
    settings(TRUSTED_PROXY_ADDRESSES=("10.1.0.0/16",))
    outside = client.get("/me", headers={**operator_headers, **JSON}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    inside = client.get("/me", headers=operator_headers, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert outside.status_code == 401
    assert inside.status_code == 200


def test_headers_need_the_proxy_shared_secret_when_configured(client, settings, operator_headers):
    settings(PROXY_SHARED_SECRET="proxy-s3cret")
    assert client.get("/me", headers={**operator_headers, **JSON}).status_code == 401
    wrong = {**operator_headers, "X-Backoffice-Proxy-Secret": "guess", **JSON}
    assert client.get("/me", headers=wrong).status_code == 401
    right = {**operator_headers, "X-Backoffice-Proxy-Secret": "proxy-s3cret"}
    assert client.get("/me", headers=right).status_code == 200


def test_custom_header_names(client, settings):
    settings(IDENTITY_NAME_HEADER="X-Forwarded-Email")
    assert client.get("/me", headers={"X-Forwarded-Email": "f@example.com"}).get_json()["email"] == "f@example.com"


def test_operator_row_is_upserted(client, db_session, admin_headers):
    client.get("/me", headers=admin_headers)
    operator = db_session.get(Operator, "oid-admin@example.com")
    assert operator is not None
    assert (operator.name, operator.email, operator.is_admin) == ("Ada Admin", "admin@example.com", True)


def test_dev_login_absent_unless_enabled(client):
    assert client.get("/dev/login", headers=HTML).status_code == 404


def test_dev_login_signs_in_and_out(client, settings):
    settings(BACKOFFICE_DEV_LOGIN=True, WTF_CSRF_ENABLED=False, TRUST_PROXY_HEADERS=False)
    assert client.get("/accounts", headers=HTML).headers["Location"] == "/dev/login?next=%2Faccounts"
    assert b"Sign in as admin" in client.get("/dev/login", headers=HTML).data
    signed_in = client.post("/dev/login", data={"identity": "admin", "next": "/accounts"})
    assert (signed_in.status_code, signed_in.headers["Location"]) == (303, "/accounts")
    assert client.get("/me").get_json()["isAdmin"] is True
    assert client.post("/dev/login", data={"identity": "root", "next": "/"}).status_code == 400
    client.post("/dev/logout")
    assert client.get("/me", headers=JSON).status_code == 401


def test_dev_login_never_redirects_off_site(client, settings):
    settings(BACKOFFICE_DEV_LOGIN=True, WTF_CSRF_ENABLED=False)
    response = client.post("/dev/login", data={"identity": "operator", "next": "//evil.example/x"})
    assert response.headers["Location"] == "/"


def test_post_without_csrf_token_is_400(client, operator_headers):
    response = client.post("/preferences/kiosk", headers={**operator_headers, **HTML}, data={"next": "/"})
    assert response.status_code == 400
    assert b"security token" in response.data


def test_post_with_csrf_header_is_accepted(client, operator_headers):
    page = client.get("/", headers=operator_headers).get_data(as_text=True)
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    response = client.post("/preferences/kiosk", headers={**operator_headers, "X-CSRFToken": token}, data={"next": "/users"})
    assert (response.status_code, response.headers["Location"]) == (303, "/users")
    assert 'class="kiosk"' in client.get("/", headers=operator_headers).get_data(as_text=True)
