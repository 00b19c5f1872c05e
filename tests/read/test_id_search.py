"""Every list finds the rows that carry a pasted Stripe id or an owner's address, by equality on an index."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from backoffice import search
from backoffice.accounts import people
from backoffice.billing.lists import history, invoices, lookup
from backoffice.billing.lists.lookup import find_carriers
from backoffice.read import account_list
from tests.id_search_data import IDS, seed_ids

PLANS = ("basis", "standard", "premium")


@pytest.fixture
def ids(db_session):
    return seed_ids(db_session)


def accounts(session, query):
    page = account_list.list_accounts(session, account_list.AccountFilter(search=search.normalize(query)),
                                      plan_order=PLANS)
    return [row.id for row in page.rows]


def ledger_events(session, query):
    page = history.list_ledger(session, history.LedgerFilter(search=search.normalize(query)))
    return sorted(row.stripe_event_id for row in page.rows)


def invoice_rows(session, query):
    criteria = invoices.InvoiceFilter(search=search.normalize(query))
    return sorted(row.key for row in invoices.list_invoice_rows(session, criteria).rows)


def users(session, query):
    text = search.normalize(query)
    criteria = people.UserFilter(search=text, accounts=lookup.accounts_named(session, text))
    return sorted(row.id for row in people.list_users(session, criteria).rows)


@pytest.mark.parametrize("kind", ["tenant", "customer", "subscription", "invoice", "credited_invoice", "charge",
                                  "refund", "credit_note", "paid_event", "created_event", "owner_email"])
def test_the_accounts_list_finds_the_account_by_every_id_it_carries(ids, db_session, kind):
    assert accounts(db_session, getattr(ids, kind)) == [IDS.tenant]


def test_ids_keep_their_case_and_unknown_or_partial_ids_find_nothing(ids, db_session):
    assert search.normalize(IDS.customer) == IDS.customer
    assert accounts(db_session, IDS.customer.lower()) == []
    assert accounts(db_session, IDS.customer[:-1]) == []
    assert accounts(db_session, "cus_Nobody4567") == []
    # A member's address is not the owner's: it finds no account (the users list finds the person).
    assert accounts(db_session, IDS.member_email) == []
    assert accounts(db_session, "fjord") == [IDS.tenant]  # a fragment still matches names


def test_billing_events_by_event_id_by_object_and_by_account(ids, db_session):
    assert ledger_events(db_session, IDS.paid_event) == [IDS.paid_event]
    # An invoice, its charge and a refund of that charge lead to the invoice's own events.
    for query in (IDS.invoice, IDS.charge, IDS.refund):
        assert ledger_events(db_session, query) == [IDS.paid_event], query
    both = sorted([IDS.paid_event, IDS.created_event])
    for query in (IDS.customer, IDS.subscription, IDS.tenant, IDS.owner_email):
        assert ledger_events(db_session, query) == both, query


def test_invoices_by_invoice_charge_refund_credit_note_and_account(ids, db_session):
    first = [f"{IDS.invoice}:invoice"]
    credited = sorted([f"{IDS.credited_invoice}:credit_note", f"{IDS.credited_invoice}:invoice"])
    for query in (IDS.invoice, IDS.charge, IDS.refund, IDS.paid_event):
        assert invoice_rows(db_session, query) == first, query
    assert invoice_rows(db_session, IDS.credit_note) == credited
    for query in (IDS.customer, IDS.subscription, IDS.owner_email):
        assert invoice_rows(db_session, query) == sorted(first + credited), query
    assert invoice_rows(db_session, "in_Nobody45678") == []


def test_invoice_totals_follow_a_named_invoice(ids, db_session):
    totals = invoices.invoice_totals(db_session, invoices.InvoiceFilter(search=IDS.invoice))
    assert {currency: total.amount for currency, total in totals.items()} == {"EUR": 49}
    whole = invoices.invoice_totals(db_session, invoices.InvoiceFilter(search=IDS.customer))
    assert whole["EUR"].amount == 49  # the credited invoice nets to nothing


def test_users_by_user_id_account_id_and_address(ids, db_session):
    assert users(db_session, IDS.owner_user) == [IDS.owner_user]
    assert users(db_session, IDS.tenant) == sorted([IDS.owner_user, "usr_Fjord4Bo"])
    assert users(db_session, IDS.owner_email) == sorted([IDS.owner_user, "usr_Other4Anna"])
    # A customer or a subscription stands for its account; an invoice or a charge is carried by no user.
    for query in (IDS.customer, IDS.subscription):
        assert users(db_session, query) == sorted([IDS.owner_user, "usr_Fjord4Bo"]), query
    assert users(db_session, IDS.charge) == [] and users(db_session, IDS.invoice) == []


def test_a_name_fragment_names_no_carriers(ids, db_session):
    assert find_carriers(db_session, "fjord") is None
    assert find_carriers(db_session, None) is None
    whole = find_carriers(db_session, IDS.customer)
    assert whole is not None and whole.tenants == {IDS.tenant} and not whole.names_objects


@pytest.mark.parametrize("sql", [
    "SELECT tenant_id FROM subscriptions WHERE stripe_subscription_id = 'sub_x'",
    "SELECT id FROM stripe_events WHERE (((payload -> 'data') -> 'object') ->> 'id') = 're_x'",
])
def test_id_lookups_use_an_index(db_session, sql):
    db_session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db_session.scalars(text(f"EXPLAIN {sql}")))
    assert "Index" in plan and "Seq Scan" not in plan, plan
