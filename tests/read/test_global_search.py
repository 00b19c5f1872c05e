"""The global search: each kind of pasted id and an owner's address find their rows, grouped and limited by kind."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backoffice import search
from backoffice.read import global_search
from backoffice.read.global_search import Kind
from tests.id_search_data import IDS, seed_ids

PLANS = ("basis", "standard", "premium")
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def ids(db_session):
    return seed_ids(db_session)


def found(session, query, **options):
    results = global_search.search_everything(session, search.normalize(query), plan_order=PLANS,
                                              billing=options.pop("billing", True), now=NOW, **options)
    return {group.kind: group for group in results.groups if group.rows}


@pytest.mark.parametrize(("kind", "expected"), [
    ("customer", {Kind.ACCOUNTS, Kind.USERS, Kind.BILLING_EVENTS, Kind.INVOICES}),
    ("subscription", {Kind.ACCOUNTS, Kind.USERS, Kind.BILLING_EVENTS, Kind.INVOICES}),
    ("invoice", {Kind.ACCOUNTS, Kind.BILLING_EVENTS, Kind.INVOICES}),
    ("charge", {Kind.ACCOUNTS, Kind.BILLING_EVENTS, Kind.INVOICES}),
    ("refund", {Kind.ACCOUNTS, Kind.BILLING_EVENTS, Kind.INVOICES}),
    ("credit_note", {Kind.ACCOUNTS, Kind.INVOICES}),  # its invoice led to no ledger row here
    ("paid_event", {Kind.ACCOUNTS, Kind.BILLING_EVENTS, Kind.INVOICES}),
    ("created_event", {Kind.ACCOUNTS, Kind.BILLING_EVENTS}),
    ("tenant", {Kind.ACCOUNTS, Kind.USERS, Kind.BILLING_EVENTS, Kind.INVOICES}),
    ("owner_email", {Kind.ACCOUNTS, Kind.USERS, Kind.BILLING_EVENTS, Kind.INVOICES}),
])
def test_every_id_kind_and_the_owner_email_find_their_account_and_rows(ids, db_session, kind, expected):
    groups = found(db_session, getattr(ids, kind))
    assert set(groups) == expected
    assert [row.id for row in groups[Kind.ACCOUNTS].rows] == [IDS.tenant]


def test_an_event_id_finds_its_own_ledger_row_and_a_credit_note_its_invoice(ids, db_session):
    assert [row.stripe_event_id for row in found(db_session, IDS.paid_event)[Kind.BILLING_EVENTS].rows] == [IDS.paid_event]
    credit = found(db_session, IDS.credit_note)[Kind.INVOICES]
    assert {row.transaction_id for row in credit.rows} == {IDS.credited_invoice}
    assert {row.kind for row in credit.rows} == {"invoice", "credit_note"}


def test_groups_are_limited_and_say_there_is_more(ids, db_session):
    groups = found(db_session, IDS.tenant, limit=1)
    users = groups[Kind.USERS]
    assert len(users.rows) == 1 and users.total == 2 and users.more
    assert not groups[Kind.ACCOUNTS].more


def test_billing_groups_only_while_billing_is_public(ids, db_session):
    assert set(found(db_session, IDS.owner_email, billing=False)) == {Kind.ACCOUNTS, Kind.USERS}


def test_a_name_fragment_searches_names_and_one_character_searches_nothing(ids, db_session):
    groups = found(db_session, "Fjord Con")
    assert [row.name for row in groups[Kind.ACCOUNTS].rows] == [IDS.tenant_name]
    results = global_search.search_everything(db_session, "f", plan_order=PLANS, billing=True, now=NOW)
    assert results.query is None and results.groups == []
    nothing = global_search.search_everything(db_session, "cus_Nobody4567", plan_order=PLANS, billing=True, now=NOW)
    assert nothing.empty
