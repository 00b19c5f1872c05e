"""/search: the whole page without htmx, the grouped results alone with it, and the shell's box on every page."""
from __future__ import annotations

import pytest

from backoffice.accounts.models import User
from backoffice.read.global_search import GROUP_SIZE
from tests.id_search_data import IDS, seed_ids

HX = {"HX-Request": "true"}


@pytest.fixture
def ids(data):
    with data() as session:
        return seed_ids(session)


def test_the_page_the_partial_and_vary(client, operator_headers, ids):
    page = client.get(f"/search?q={IDS.charge}", headers=operator_headers)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and 'role="search"' in body
    assert 'id="global-search-input"' in body and 'hx-trigger="input changed delay:250ms"' in body
    assert f'href="/accounts/{IDS.tenant}"' in body
    partial = client.get(f"/search?q={IDS.charge}", headers={**operator_headers, **HX})
    fragment = partial.get_data(as_text=True)
    assert partial.status_code == 200 and "<html" not in fragment
    assert "HX-Request" in partial.headers["Vary"]
    assert 'data-kind="accounts"' in fragment and 'data-kind="invoices"' in fragment
    assert IDS.invoice in fragment and f'href="/accounts/{IDS.tenant}/invoices"' in fragment
    # Only the shell's box gets a listbox of options; the page and other targets get plain grouped links.
    assert 'role="option"' not in body and 'role="option"' not in fragment
    shell = client.get(f"/search?q={IDS.charge}", headers={**operator_headers, **HX,
                                                           "HX-Target": "global-search-results"})
    options = shell.get_data(as_text=True)
    assert 'role="listbox"' in options and 'role="group"' in options
    assert options.count('role="option"') == options.count('class="search-hit"') > 0
    assert 'id="global-search-accounts-1"' in options and 'aria-selected="false"' in options


def test_an_owner_email_finds_the_account_and_the_person_with_see_all_links(client, operator_headers, ids):
    fragment = client.get("/search", query_string={"q": IDS.owner_email, "per": "x"},
                          headers={**operator_headers, **HX}).get_data(as_text=True)
    assert f'href="/users/{IDS.owner_user}"' in fragment and f'href="/accounts/{IDS.tenant}"' in fragment
    many = client.get(f"/search?q={IDS.tenant}", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert 'data-kind="users"' in many
    # The users list finds an account's people by its Stripe customer id, as the global search's group does.
    listing = client.get(f"/users?q={IDS.customer}", headers=operator_headers).get_data(as_text=True)
    assert IDS.owner_email in listing and IDS.member_email in listing


def test_nothing_short_and_too_long(client, operator_headers, ids):
    nothing = client.get("/search?q=cus_Nobody4567", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert 'data-testid="search-empty"' in nothing
    short = client.get("/search?q=f", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "at least 2 characters" in short
    empty = client.get("/search", headers={**operator_headers, **HX})
    assert empty.status_code == 200 and empty.get_data(as_text=True).strip() == ""
    assert client.get("/search?q=" + "x" * 101, headers=operator_headers).status_code == 400


def test_a_full_group_links_to_its_list_filtered_by_the_query(client, operator_headers, data):
    with data() as session:
        seed_ids(session)
        session.add_all([User(id=f"usr_Fjord4X{n}", tenant_id=IDS.tenant, email=f"x{n}@fjord.example")
                         for n in range(GROUP_SIZE)])
    fragment = client.get(f"/search?q={IDS.tenant}", headers={**operator_headers, **HX}).get_data(as_text=True)
    see_all = f'href="/users?q={IDS.tenant}"'
    assert see_all in fragment and fragment.count('href="/users/usr_') == GROUP_SIZE
    listing = client.get(f"/users?q={IDS.tenant}&per_page=25", headers=operator_headers).get_data(as_text=True)
    assert IDS.owner_email in listing and all(f"x{n}@fjord.example" in listing for n in range(GROUP_SIZE))
