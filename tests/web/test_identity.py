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
    ["%%%not-base64%%%", base64.b64encode(b"{not json").decode(), base64.b64encode(b"[1,2]").decode(),
     base64.b64encode(b'{"claims": "no list"}').decode()],
)
def test_a_malformed_principal_is_anonymous(client, garbage):
    headers = {"X-MS-CLIENT-PRINCIPAL-NAME": "g@example.com", "X-MS-CLIENT-PRINCIPAL": garbage, **JSON}
    assert client.get("/me", headers=headers).status_code == 401


def test_a_name_without_claims_is_an_operator_without_groups(client):
    headers = {"X-MS-CLIENT-PRINCIPAL-NAME": "g@example.com", "X-MS-CLIENT-PRINCIPAL": ""}
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


HTMX = {"HX-Request": "true", "Accept": "*/*"}


def test_an_htmx_request_without_a_session_sends_the_page_to_sign_in_and_back(client):
    response = client.get("/accounts?q=ab", headers={**HTMX, "HX-Current-URL": "http://localhost/accounts?plan=premium"})
    assert response.status_code == 401 and response.get_json() == {"error": "authentication required"}
    # Back to the page the browser showed, not to the partial htmx asked for.
    assert response.headers["HX-Redirect"] == "/.auth/login/aad?post_login_redirect_uri=%2Faccounts%3Fplan%3Dpremium"


def test_the_dev_login_takes_an_htmx_request_back_too(client, settings):
    settings(BACKOFFICE_DEV_LOGIN=True, TRUST_PROXY_HEADERS=False)
    response = client.get("/dashboard/cards/kpis", headers={**HTMX, "HX-Current-URL": "http://localhost/?period=90"})
    assert response.status_code == 401 and response.headers["HX-Redirect"] == "/dev/login?next=%2F%3Fperiod%3D90"


@pytest.mark.parametrize("current", [
    "http://evil.example/accounts", "https://evil.example/", "javascript:alert(1)", "//evil.example/x",
    "http://localhost@evil.example/", "http://localhost:81/x", "", "http://[::1/", "http://localhost//evil.example/",
])
def test_an_htmx_redirect_never_leaves_the_site(client, current):
    response = client.get("/accounts", headers={**HTMX, "HX-Current-URL": current})
    assert response.headers["HX-Redirect"] == "/.auth/login/aad?post_login_redirect_uri=%2F"


def test_a_non_htmx_json_request_gets_no_redirect_header(client):
    assert "HX-Redirect" not in client.get("/accounts", headers=JSON).headers


@pytest.mark.parametrize("target", [
    "//evil.example/x", "/\\evil.example/x", "\\\\evil.example", "https://evil.example/", "javascript:alert(1)",
    "/accounts\r\nSet-Cookie: x=1", "/\t/evil.example", "/\n/evil.example", "/x\x00y", "accounts", "", None,
    "http:/evil.example", "/\x7f",
])
def test_safe_next_refuses_anything_but_a_same_site_path(target):
    from backoffice.web.auth import safe_next

    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/accounts?q=%2F%2Fx&plan=premium", "/users/usr_1/logins", "/søg?q=æøå"])
def test_safe_next_keeps_same_site_paths(target):
    from backoffice.web.auth import safe_next

    assert safe_next(target) == target


def test_dev_login_refuses_a_crlf_next(client, settings):
    settings(BACKOFFICE_DEV_LOGIN=True, WTF_CSRF_ENABLED=False, TRUST_PROXY_HEADERS=False)
    response = client.post("/dev/login", data={"identity": "operator", "next": "/accounts\r\nX-Evil: 1"})
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    assert "X-Evil" not in response.headers
