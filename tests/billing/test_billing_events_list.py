"""The cross-account ledger (reference §7 GetBackOfficeBillingEventsTests, translated): order, search by account,
types, the overlapping lenses, movements, the period, deleted accounts, paging and the count cap."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from backoffice.billing.lists import history
from backoffice.paging import PageOutOfRange
from tests.factories import OCCURRED_AT, make_billing_event, make_subscription, make_tenant

D = Decimal


@pytest.fixture
def ledger(db_session):
    """Two accounts and a deleted one, with rows of every lens, a NoOp, and a day apart each."""
    fjord = make_subscription(db_session, tenant_id=make_tenant(db_session, name="Fjord ApS").id)
    birch = make_subscription(db_session, tenant_id=make_tenant(db_session, name="Birch 100% Ltd").id)
    gone = make_subscription(db_session, tenant_id=make_tenant(db_session, name="Fjord Gone", deleted_at=OCCURRED_AT).id)
    rows = [
        (fjord, "SubscriptionCreated", "0", "49", "new"),
        (birch, "SubscriptionCreated", "0", "99", "new"),
        (fjord, "SubscriptionUpgraded", "49", "99", "expansion"),
        (birch, "SubscriptionRenewed", None, None, None),
        (fjord, "SubscriptionSuspended", "99", "0", "churn"),
        (birch, "PaymentFailed", None, None, None),
        (fjord, "NoOp", None, None, None),
        (gone, "SubscriptionCreated", "0", "49", "new"),
    ]
    for day, (subscription, kind, before, after, movement) in enumerate(rows):
        amounts = {"previous_amount": D(before), "new_amount": D(after), "amount_delta": D(after) - D(before),
                   "committed_mrr": D(after)} if before is not None else {
            "previous_amount": None, "new_amount": None, "amount_delta": None, "committed_mrr": D("0")}
        make_billing_event(db_session, subscription=subscription, event_type=kind, movement=movement, position=0,
                           occurred_at=OCCURRED_AT + timedelta(days=day), **amounts)
    return db_session


def kinds(page):
    return [(row.tenant_name, row.event_type) for row in page.rows]


def test_newest_first_noop_and_deleted_accounts_hidden(ledger):
    page = history.list_ledger(ledger, history.LedgerFilter())
    assert kinds(page) == [("Birch 100% Ltd", "PaymentFailed"), ("Fjord ApS", "SubscriptionSuspended"),
                           ("Birch 100% Ltd", "SubscriptionRenewed"), ("Fjord ApS", "SubscriptionUpgraded"),
                           ("Birch 100% Ltd", "SubscriptionCreated"), ("Fjord ApS", "SubscriptionCreated")]
    ascending = history.list_ledger(ledger, history.LedgerFilter(), descending=False)
    assert kinds(ascending) == kinds(page)[::-1]
    by_account = history.list_ledger(ledger, history.LedgerFilter(), sort="account", descending=False)
    assert [name for name, _ in kinds(by_account)] == ["Birch 100% Ltd"] * 3 + ["Fjord ApS"] * 3


def test_search_by_account_name_takes_wildcards_literally(ledger):
    assert {name for name, _ in kinds(history.list_ledger(ledger, history.LedgerFilter(search="fjord")))} == {"Fjord ApS"}
    assert {name for name, _ in kinds(history.list_ledger(ledger, history.LedgerFilter(search="100%")))} == {
        "Birch 100% Ltd"}
    assert history.list_ledger(ledger, history.LedgerFilter(search="_")).total == 0


@pytest.mark.parametrize(("lens", "expected"), [
    ("mrr", {"SubscriptionCreated", "SubscriptionUpgraded", "SubscriptionSuspended"}),
    ("state", {"SubscriptionCreated", "SubscriptionUpgraded", "SubscriptionSuspended"}),
    ("other", {"SubscriptionRenewed", "PaymentFailed"}),
])
def test_lenses_are_independent_and_overlap(ledger, lens, expected):
    page = history.list_ledger(ledger, history.LedgerFilter(lens=lens))
    assert {kind for _, kind in kinds(page)} == expected


def test_types_movements_and_period_combine(ledger):
    page = history.list_ledger(ledger, history.LedgerFilter(types=("SubscriptionCreated", "PaymentFailed")))
    assert sorted(kind for _, kind in kinds(page)) == ["PaymentFailed", "SubscriptionCreated", "SubscriptionCreated"]
    moved = history.list_ledger(ledger, history.LedgerFilter(movements=("new", "churn")))
    assert sorted(kind for _, kind in kinds(moved)) == ["SubscriptionCreated", "SubscriptionCreated",
                                                        "SubscriptionSuspended"]
    recent = history.list_ledger(ledger, history.LedgerFilter(since=OCCURRED_AT + timedelta(days=4)))
    assert kinds(recent) == [("Birch 100% Ltd", "PaymentFailed"), ("Fjord ApS", "SubscriptionSuspended")]
    assert history.list_ledger(ledger, history.LedgerFilter(lens="mrr", search="birch")).total == 1


def test_pages_and_cursors_agree_and_a_page_past_the_end_is_refused(ledger):
    first = history.list_ledger(ledger, history.LedgerFilter(), per_page=4)
    second = history.list_ledger(ledger, history.LedgerFilter(), per_page=4, page=2)
    by_cursor = history.list_ledger(ledger, history.LedgerFilter(), per_page=4, page=2, after=first.next_cursor)
    assert kinds(by_cursor) == kinds(second) and len(second.rows) == 2 and not first.total_capped
    with pytest.raises(PageOutOfRange):
        history.list_ledger(ledger, history.LedgerFilter(), per_page=4, page=3)


def test_a_long_list_stops_counting_at_its_cap_and_every_page_stays_reachable(ledger, monkeypatch):
    monkeypatch.setattr(history, "COUNT_CAP", 3)
    first = history.list_ledger(ledger, history.LedgerFilter(), per_page=2)
    assert first.total_capped and first.total == 3 and first.has_next
    third = history.list_ledger(ledger, history.LedgerFilter(), per_page=2, page=3)
    assert len(third.rows) == 2 and not third.has_next
    with pytest.raises(PageOutOfRange):
        history.list_ledger(ledger, history.LedgerFilter(), per_page=2, page=4)


def test_the_read_model_follows_corrections(ledger):
    from backoffice.billing.models import BillingEvent
    from tests.factories import make_correction

    upgraded = ledger.query(BillingEvent).filter_by(event_type="SubscriptionUpgraded").one()
    renewed = ledger.query(BillingEvent).filter_by(event_type="SubscriptionRenewed").one()
    make_correction(ledger, upgraded, event_type="NoOp", from_plan="standard", to_plan="standard", previous_amount=None,
                    new_amount=None, amount_delta=None, committed_mrr=D("49"), movement=None)
    make_correction(ledger, renewed, event_type="SubscriptionDowngraded", from_plan="premium", to_plan="standard",
                    previous_amount=D("99"), new_amount=D("49"), amount_delta=D("-50"), committed_mrr=D("49"),
                    movement="contraction", position=3)
    every = kinds(history.list_ledger(ledger, history.LedgerFilter()))
    assert ("Fjord ApS", "SubscriptionUpgraded") not in every and ("Birch 100% Ltd", "SubscriptionDowngraded") in every
    assert kinds(history.list_ledger(ledger, history.LedgerFilter(movements=("contraction",)))) == [
        ("Birch 100% Ltd", "SubscriptionDowngraded")]
    assert "SubscriptionDowngraded" not in {kind for _, kind in kinds(history.list_ledger(
        ledger, history.LedgerFilter(lens="other")))}


def test_sorting_by_account_follows_a_renamed_account_in_both_lists(ledger):
    """The read models keep each row's account name (for the sort); renaming the account re-sorts its rows."""
    from sqlalchemy import update

    from backoffice.accounts.models import Tenant
    from backoffice.billing.lists import invoices
    from backoffice.billing.models import PaymentTransaction, Subscription
    from tests.factories import payment_values

    for subscription in ledger.query(Subscription).all():
        ledger.add(PaymentTransaction(**payment_values(subscription)))
    ledger.flush()

    def accounts():
        ledger_names = [name for name, _ in kinds(history.list_ledger(ledger, history.LedgerFilter(), sort="account",
                                                                      descending=False))]
        invoice_names = [row.tenant_name for row in invoices.list_invoice_rows(
            ledger, invoices.InvoiceFilter(), sort="account", descending=False).rows]
        return list(dict.fromkeys(ledger_names)), invoice_names

    assert accounts() == (["Birch 100% Ltd", "Fjord ApS"], ["Birch 100% Ltd", "Fjord ApS"])
    ledger.execute(update(Tenant).where(Tenant.name == "Birch 100% Ltd").values(name="Zephyr Ltd"))
    ledger.expire_all()
    assert accounts() == (["Fjord ApS", "Zephyr Ltd"], ["Fjord ApS", "Zephyr Ltd"])
