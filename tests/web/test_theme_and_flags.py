"""The shell's theme preference, favicon and flags (issue 19): stored like Kiosk mode, no schema change."""
from pathlib import Path

from babel import Locale

from backoffice.web.formatting import flag_svg


def test_theme_follows_the_system_until_the_operator_chooses(client, operator_headers, settings):
    settings(WTF_CSRF_ENABLED=False)
    page = client.get("/", headers=operator_headers).get_data(as_text=True)
    assert "<html lang=\"en\">" in page and 'content="light dark"' in page
    response = client.post("/preferences/theme", headers=operator_headers, data={"theme": "dark", "next": "/users"})
    assert (response.status_code, response.headers["Location"]) == (303, "/users")
    page = client.get("/", headers=operator_headers).get_data(as_text=True)
    assert 'data-theme="dark"' in page and '<meta name="color-scheme" content="dark">' in page
    client.post("/preferences/theme", headers=operator_headers, data={"theme": "system", "next": "/"})
    assert "data-theme=" not in client.get("/", headers=operator_headers).get_data(as_text=True)


def test_unknown_theme_is_refused_with_a_message(client, operator_headers, settings):
    settings(WTF_CSRF_ENABLED=False)
    response = client.post("/preferences/theme", headers=operator_headers, data={"theme": "neon", "next": "/"})
    assert response.status_code == 303
    page = client.get("/", headers=operator_headers).get_data(as_text=True)
    assert "Unknown theme: neon" in page and "data-theme=" not in page


def test_favicon_is_linked_and_served(client, operator_headers):
    page = client.get("/users", headers=operator_headers).get_data(as_text=True)
    href = page.split('<link rel="icon" href="', 1)[1].split('"', 1)[0]
    response = client.get(href)
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    response.close()


def test_flag_svg_names_a_vendored_file_for_known_countries_only(app):
    with app.test_request_context():
        assert flag_svg("dk") == "vendor/flags/flag-icons-7.5.0/dk.svg"
        assert flag_svg("FO") == "vendor/flags/flag-icons-7.5.0/fo.svg"
        for nonsense in (None, "", "D", "DNK", "1A", "ZZ", "QO", "ÅÅ", "../"):
            assert flag_svg(nonsense) is None
        # Every territory Babel names either has its vendored SVG or shows no flag: never a 404 image.
        for code in Locale("en").territories:
            if (path := flag_svg(code)) is not None:
                assert (Path(app.static_folder) / path).is_file(), code
