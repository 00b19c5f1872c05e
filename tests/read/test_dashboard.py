"""The dashboard's figures on PostgreSQL (reference §2, §7: GetDashboardKpis, MrrTrend, RevenueTrend, Trends, plan
distribution, recent signups and events), with a fixed clock."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, update

from backoffice.accounts.models import Login, Tenant, User, UserSession
from backoffice.billing.ledger import revenue
from backoffice.billing.models import PaymentTransaction
from backoffice.fx import rates
from backoffice.read import dashboard as queries
from backoffice.read_models import mrr_daily as rollups
from tests.factories import (
    make_billing_event,
    make_correction,
    make_subscription,
    make_tenant,
    new_id,
    payment_values,
)

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
D = Decimal


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def week(days: int = 7):
    return queries.window(days, NOW)


def test_the_window_is_the_last_n_utc_days_and_the_n_before():
    period = week()
    assert (period.first, period.today, period.prior_first) == (date(2026, 3, 25), date(2026, 3, 31), date(2026, 3, 18))
    assert period.current_days()[-1] == date(2026, 3, 31) and period.prior_days()[-1] == date(2026, 3, 24)
    with pytest.raises(ValueError):
        queries.window(14, NOW)


def test_tiles_count_live_accounts_users_and_sessions_and_keep_deleted_tenants_in_the_money(db_session):
    s = db_session
    # The period is the last 7 UTC days: from midnight of 25 March on (the boundary counts), as the list it opens.
    for created in (datetime(2026, 3, 25, tzinfo=UTC), NOW - timedelta(days=1), NOW - timedelta(hours=1)):
        make_tenant(s, created_at=created)
    for created in (NOW - timedelta(days=8), NOW - timedelta(days=13)):
        make_tenant(s, created_at=created)
    make_tenant(s, created_at=NOW - timedelta(days=14, seconds=1))  # before the prior period
    gone = make_tenant(s, created_at=NOW - timedelta(days=2), deleted_at=NOW - timedelta(days=1))
    live = make_tenant(s, created_at=at(1, month=1))
    paying = make_subscription(s, tenant_id=live.id, plan="standard", forward_mrr=D("49.00"), current_price_currency="EUR")
    gone_subscription = make_subscription(s, tenant_id=gone.id, plan="premium", forward_mrr=D("99.00"),
                                          current_price_currency="EUR")
    make_subscription(s, tenant_id=make_tenant(s, created_at=at(1, month=1)).id, plan="standard",
                      forward_mrr=D("400.00"), current_price_currency="SEK")  # another currency
    users = [User(id=new_id("usr"), tenant_id=live.id, email=f"u{i}@example.com", last_seen_at=seen, deleted_at=deleted)
             for i, (seen, deleted) in enumerate([(NOW - timedelta(days=2), None), (NOW - timedelta(days=9), None),
                                                  (None, None), (NOW, NOW)])]
    users.append(User(id=new_id("usr"), tenant_id=gone.id, email="gone@example.com", last_seen_at=NOW))
    s.add_all(users)
    s.flush()
    user = users[0]
    s.add_all([
        UserSession(id=new_id("ses"), user_id=user.id, tenant_id=live.id, login_method="google",
                    created_at=NOW - timedelta(days=3), last_active_at=NOW - timedelta(hours=2)),
        UserSession(id=new_id("ses"), user_id=user.id, tenant_id=live.id, login_method="google",
                    created_at=NOW - timedelta(hours=5)),
        UserSession(id=new_id("ses"), user_id=user.id, tenant_id=live.id, login_method="google",
                    created_at=NOW - timedelta(hours=5), revoked_at=NOW, revoked_reason="logged_out"),
        UserSession(id=new_id("ses"), user_id=user.id, tenant_id=live.id, login_method="google",
                    created_at=NOW - timedelta(days=3), last_active_at=NOW - timedelta(hours=25)),
    ])
    s.add(PaymentTransaction(**payment_values(paying, date=at(10))))
    s.add(PaymentTransaction(**payment_values(gone_subscription, date=at(12))))
    # The ECB's rate on Friday 27 March stands for the weekend and 30–31 March: 400 SEK = 400 ÷ 10.96 EUR.
    rates.refresh(s, rates.parse(["Date,SEK\n", "2026-03-27,10.96\n", "2026-03-31,99\n"]))
    s.flush()

    kpis = queries.kpis(s, "EUR", week())
    # 3 new, 2 in the prior period, 1 older, and two from January; the deleted tenant is out
    assert (kpis.total_accounts, kpis.new_accounts, kpis.new_accounts_prior) == (8, 3, 2)
    assert kpis.new_accounts_delta_percent == 50
    # The deleted tenant's subscription too, and the SEK one converted at today's rate (31 March: 99 per euro).
    assert kpis.forward_mrr == D("148.00") + D("4.04")
    assert kpis.blended_mrr == kpis.mrr_end == D("0.00")  # the tile is the ledger's figure: no rows here
    assert kpis.active_users == 1  # not the deleted user, nor the deleted account's, nor one seen 9 days ago
    assert kpis.active_sessions == 2
    assert kpis.total_revenue == D("98.00") and kpis.deleted_revenue == D("49.00")
    assert kpis.currency == "EUR"


def test_active_users_follow_sign_ins_deletions_and_deleted_accounts(db_session):
    """The tile reads a rollup the users' and tenants' triggers keep: at each step it equals a count of the users."""
    s = db_session
    aurora, birch = make_tenant(s, name="Aurora"), make_tenant(s, name="Birch")
    ann, bob, cy = (User(id=new_id("usr"), tenant_id=tenant.id, email=f"{name}@example.com", last_seen_at=seen)
                    for name, tenant, seen in (("ann", aurora, at(30)), ("bob", birch, at(20)), ("cy", birch, None)))
    s.add_all([ann, bob, cy])
    s.flush()

    def active(days):
        return queries.kpis(s, "EUR", week(days)).active_users

    def counted(days):
        first = datetime.combine(week(days).first, datetime.min.time(), UTC)
        return s.query(User).join(Tenant, Tenant.id == User.tenant_id).filter(
            User.deleted_at.is_(None), Tenant.deleted_at.is_(None), User.last_seen_at >= first).count()

    steps = [
        lambda: None,
        lambda: s.execute(update(User).where(User.id == bob.id).values(last_seen_at=at(29))),  # signs in again
        lambda: s.execute(update(User).where(User.id == cy.id).values(last_seen_at=at(31))),  # first time
        lambda: s.execute(update(User).where(User.id == ann.id).values(deleted_at=NOW)),
        lambda: s.execute(update(Tenant).where(Tenant.id == birch.id).values(deleted_at=NOW)),
        lambda: s.execute(update(User).where(User.id == bob.id).values(last_seen_at=at(1))),  # in a deleted account
        lambda: s.execute(update(Tenant).where(Tenant.id == birch.id).values(deleted_at=None)),  # restored
        lambda: s.execute(delete(User).where(User.id == cy.id)),
    ]
    seen = []
    for step in steps:
        step()
        s.expire_all()
        seen.append(active(7))
        assert active(7) == counted(7) and active(30) == counted(30) and active(90) == counted(90)
    assert seen == [1, 2, 3, 2, 0, 0, 1, 0]


@pytest.mark.parametrize(("new", "prior", "percent"), [(3, 2, 50), (4, 3, 33), (9, 8, 12), (11, 8, 38), (2, 4, -50),
                                                       (5, 0, None), (0, 0, None)])
def test_new_accounts_delta_rounds_half_to_even_and_is_none_without_a_prior(new, prior, percent):
    kpis = queries.Kpis(0, new, prior, D(0), D(0), D(0), D(0), 0, 0, "EUR")
    assert kpis.new_accounts_delta_percent == percent


def test_mrr_delta_comes_from_the_event_log_to_one_decimal():
    assert queries.Kpis(0, 0, 0, D(0), D("300.00"), D("349.00"), D(0), 0, 0, "EUR").mrr_delta_percent == D("16.3")
    assert queries.Kpis(0, 0, 0, D(0), D("0.00"), D("49.00"), D(0), 0, 0, "EUR").mrr_delta_percent is None


def ledger(s):
    """One subscription each: created before the prior period, expanded and churned in the period; a deleted
    tenant's row in the prior period (its history stays)."""
    first = make_subscription(s)
    second = make_subscription(s)
    gone = make_subscription(s, tenant_id=make_tenant(s, deleted_at=at(30)).id)
    rows = [
        (first, at(1), "SubscriptionCreated", "0.00", "49.00", "new"),
        (second, at(20), "SubscriptionCreated", "0.00", "99.00", "new"),
        (gone, at(21), "SubscriptionCreated", "0.00", "10.00", "new"),
        (first, at(26), "SubscriptionUpgraded", "49.00", "99.00", "expansion"),
        (second, at(28), "SubscriptionImmediatelyCancelled", "99.00", "0.00", "churn"),
        (first, at(31, 1), "SubscriptionDowngraded", "99.00", "79.00", "contraction"),
    ]
    for position, (subscription, when, kind, before, after, movement) in enumerate(rows):
        make_billing_event(s, subscription=subscription, occurred_at=when, event_type=kind, previous_amount=D(before),
                           new_amount=D(after), amount_delta=D(after) - D(before), committed_mrr=D(after),
                           movement=movement, position=position)
    noop = make_billing_event(s, subscription=first, occurred_at=at(31, 2), event_type="NoOp", previous_amount=None,
                              new_amount=None, amount_delta=None, committed_mrr=D("79.00"), movement=None, position=9)
    rollups.rebuild(s, "EUR")
    return noop


def test_mrr_trend_is_the_running_sum_of_deltas_one_point_per_day_with_the_prior_period(db_session):
    ledger(db_session)
    trend = queries.mrr_trend(db_session, "EUR", week())
    assert trend.days == [date(2026, 3, d) for d in range(25, 32)]
    assert trend.current == [D(v) for v in ("158.00", "208.00", "208.00", "109.00", "109.00", "109.00", "89.00")]
    assert trend.prior == [D(v) for v in ("49.00", "49.00", "148.00", "158.00", "158.00", "158.00", "158.00")]
    assert trend.last == D("89.00")


def test_mrr_movements_sum_to_the_change_and_name_each_kind(db_session):
    ledger(db_session)
    moves = queries.mrr_movements(db_session, "EUR", week())
    assert (moves.start, moves.end) == (D("158.00"), D("89.00"))
    assert moves.amounts == {"expansion": D("50.00"), "churn": D("-99.00"), "contraction": D("-20.00")}
    assert sum(moves.amounts.values()) == moves.change == D("-69.00")
    assert moves.counts == {"expansion": 1, "churn": 1, "contraction": 1}
    assert moves.shown() == ["new", "expansion", "reactivation", "contraction", "churn"]  # `other` only when moved
    kpis = queries.kpis(db_session, "EUR", week())
    assert (kpis.mrr_start, kpis.mrr_end) == (moves.start, moves.end)


def test_recent_billing_events_hide_noop_show_corrections_newest_first(db_session):
    noop = ledger(db_session)
    assert noop.event_type == "NoOp"
    corrected = make_billing_event(db_session, subscription=make_subscription(db_session), occurred_at=at(30),
                                   event_type="SubscriptionCancelled",
                                   previous_amount=D("49.00"), new_amount=D("0.00"), amount_delta=D("-49.00"),
                                   committed_mrr=D("0.00"), movement="churn", position=0)
    make_correction(db_session, corrected, event_type="SubscriptionExpired")
    rows = queries.recent_billing_events(db_session, limit=3)
    assert [(r.event_type, r.occurred_at) for r in rows] == [
        ("SubscriptionDowngraded", at(31, 1)), ("SubscriptionExpired", at(30)),
        ("SubscriptionImmediatelyCancelled", at(28))]
    assert all(r.tenant_name for r in rows)


def test_revenue_trend_adds_payments_and_subtracts_reversals_on_their_own_day(db_session):
    s = db_session
    subscription = make_subscription(s)
    gone = make_subscription(s, tenant_id=make_tenant(s, deleted_at=at(2)).id)
    payments = [
        payment_values(subscription, date=at(10)),  # before the prior period: the start value
        payment_values(subscription, id=new_id("in"), date=at(20)),
        payment_values(gone, id=new_id("in"), date=at(21)),  # a deleted tenant's money stays
        # refunded in part on the 27th
        payment_values(subscription, id=new_id("in"), date=at(26), status="refunded", refunded_amount=D("20.00"),
                       refunded_at=at(27)),
        # credited in full: the credit note's day wins over the refund's
        payment_values(subscription, id=new_id("in"), date=at(28), status="refunded", refunded_amount=D("49.00"),
                       refunded_at=at(29), credited_amount=D("0.00")),
        payment_values(subscription, id=new_id("in"), date=at(29), credited_amount=D("49.00"), credit_noted_at=at(30)),
        payment_values(subscription, id=new_id("in"), date=at(30), status="failed"),  # never counted
    ]
    s.add_all(PaymentTransaction(**values) for values in payments)
    s.flush()
    trend = queries.revenue_trend(s, "EUR", week())
    assert trend.current == [D(v) for v in ("147.00", "196.00", "176.00", "225.00", "225.00", "176.00", "176.00")]
    assert trend.prior == [D(v) for v in ("49.00", "49.00", "98.00", "147.00", "147.00", "147.00", "147.00")]
    total = queries.total_revenue(s, "EUR")
    assert trend.last == total == sum(revenue.lifetime_values(s, "EUR").values())
    from_payments = dict(revenue.cumulative_series(s, "EUR", week().first, week().today))
    assert from_payments == dict(zip(trend.days, trend.current, strict=True))
    # An update moves the day's figure: the trigger takes the old row out and puts the new one in.
    row = s.get(PaymentTransaction, payments[1]["id"])
    row.credited_amount, row.credit_noted_at = D("49.00"), at(31)
    s.flush()
    assert queries.revenue_trend(s, "EUR", week()).last == total - D("49.00") == queries.total_revenue(s, "EUR")


def test_account_growth_and_logins_per_day_are_zero_filled(db_session):
    s = db_session
    for when in (at(25, 1), at(25, 23), at(31), at(18)):
        make_tenant(s, created_at=when)
    make_tenant(s, created_at=at(26), deleted_at=at(27))
    growth = queries.account_growth(s, week())
    assert growth.current == [2, 0, 0, 0, 0, 0, 1] and growth.prior == [1, 0, 0, 0, 0, 0, 0]
    user = User(id=new_id("usr"), tenant_id=make_tenant(s).id, email="a@example.com")
    s.add(user)
    s.flush()
    for when, outcome, method in [(at(25), "succeeded", "one_time_password"), (at(25), "succeeded", "google"),
                                  (at(26), "failed", "google"), (at(26), "pending", "one_time_password"),
                                  (at(24, 23), "succeeded", "google"), (at(17), "succeeded", "google")]:
        s.add(Login(id=new_id("lgn"), user_id=user.id, email=user.email, method=method, outcome=outcome, created_at=when))
    s.flush()
    logins = queries.login_activity(s, week())
    assert logins.current == [2, 0, 0, 0, 0, 0, 0] and logins.prior == [0, 0, 0, 0, 0, 0, 1]
    # The rollup follows a pending sign-in that completes, and a deleted one.
    s.execute(update(Login).where(Login.outcome == "pending").values(outcome="succeeded"))
    s.execute(delete(Login).where(Login.created_at == at(24, 23)))
    logins = queries.login_activity(s, week())
    assert logins.current == [2, 1, 0, 0, 0, 0, 0] and logins.prior == [0, 0, 0, 0, 0, 0, 0]


def test_plan_distribution_lists_every_plan_even_at_zero_with_its_share(db_session):
    s = db_session
    for plan in ("standard", "standard", None, "basis", "legacy"):
        make_tenant(s, plan=plan)
    make_tenant(s, plan="premium", deleted_at=NOW)
    shares = queries.plan_distribution(s, ("basis", "standard", "premium"))
    assert [(x.plan, x.accounts, x.percent) for x in shares] == [
        ("basis", 2, D("40.0")), ("standard", 2, D("40.0")), ("premium", 0, D("0.0")), ("legacy", 1, D("20.0"))]


def test_recent_signups_are_the_newest_live_accounts(db_session):
    s = db_session
    names = [make_tenant(s, name=f"T{i}", created_at=NOW - timedelta(days=i)).name for i in range(8)]
    make_tenant(s, name="Deleted", created_at=NOW, deleted_at=NOW)
    assert [row.name for row in queries.recent_signups(s)] == names[:6]


def test_account_growth_is_summed_per_week_past_31_days_and_keeps_its_total(db_session):
    s = db_session
    for days_ago in (0, 6, 7, 40, 89, 90, 100, 179):
        make_tenant(s, created_at=NOW - timedelta(days=days_ago))
    s.flush()
    daily = queries.account_growth(s, queries.window(30, NOW))
    assert daily.bucket_days == 1 and len(daily.days) == 30
    weekly = queries.account_growth(s, queries.window(90, NOW))
    # 90 days: twelve weeks from the period's first day, then the six days up to today.
    assert weekly.bucket_days == 7 and len(weekly.days) == 13 and weekly.days[0] == queries.window(90, NOW).first
    assert sum(weekly.current) == 5 and sum(weekly.prior) == 3
    assert weekly.current[-1] == 1 and weekly.current[-2] == 2  # today; then 6 and 7 days ago (19–25 March)
