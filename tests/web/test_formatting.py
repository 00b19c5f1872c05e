"""The filters that word times, percentages, Stripe statuses and audit fields, in English and Danish; and the pages
that show them, in Danish."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from markupsafe import Markup

from backoffice.billing.models.columns import STRIPE_EVENT_STATUSES, SUBSCRIPTION_STATUSES
from backoffice.operators.models import Operator, OperatorAction
from backoffice.web.formatting import STRIPE_STATUS_LABELS, moment, moment_text, percent, relative
from tests.factories import archive_event, make_subscription, make_tenant

AT = datetime(2026, 12, 6, 20, 41, 7, 5, tzinfo=UTC)
DA = {"Accept-Language": "da"}


@pytest.fixture
def english(app):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        yield app


@pytest.fixture
def danish(app):
    with app.test_request_context(headers=DA):
        yield app


def test_one_date_style_per_locale_with_its_zone(english):
    assert moment_text(AT) == "Dec 6, 2026, 8:41:07\u202fPM UTC"
    assert moment(AT) == Markup('<time datetime="2026-12-06T20:41:07Z">Dec 6, 2026, 8:41:07\u202fPM UTC</time>')
    assert moment_text(None) == moment(None) == "—"


def test_danish_dates_in_the_danish_style(danish):
    assert moment_text(AT) == "6. dec. 2026 20.41.07 UTC"
    # Another zone in, UTC out: the zone stated is the one shown.
    assert moment_text(AT.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Copenhagen"))) == "6. dec. 2026 20.41.07 UTC"


def test_a_relative_time_carries_the_absolute_time_on_hover(english):
    shown = relative(datetime.now(UTC) - timedelta(days=8))
    match = re.fullmatch(r'<time datetime="(\S+Z)" title="([^"]+ UTC)">1 week ago</time>', str(shown))
    assert isinstance(shown, Markup) and match, shown
    assert match.group(2) == moment_text(datetime.fromisoformat(match.group(1)))
    assert relative(None) == "—"


def test_a_relative_time_inside_a_sentence_stays_markup(english):
    template = english.jinja_env.from_string('{{ _("Last seen %(when)s", when=at|relative) }}')
    html = template.render(at=datetime.now(UTC) - timedelta(hours=3))
    assert html.startswith('Last seen <time datetime="') and html.endswith(">3 hours ago</time>")


@pytest.mark.parametrize(("value", "en", "da"), [
    (Decimal("8.2"), "8.2%", "8,2\xa0%"), (17, "17%", "17\xa0%"), (Decimal("-17.5"), "-17.5%", "-17,5\xa0%"),
    (Decimal("100.0"), "100%", "100\xa0%"), (None, "—", "—"),
])
def test_percentages_in_each_locales_own_way(app, value, en, da):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert percent(value) == en
    with app.test_request_context(headers=DA):
        assert percent(value) == da


def test_every_stripe_status_has_one_translated_label(danish):
    assert set(SUBSCRIPTION_STATUSES) | set(STRIPE_EVENT_STATUSES) | {"missing"} <= set(STRIPE_STATUS_LABELS)
    render = danish.jinja_env.from_string("{{ value|stripe_status }}").render
    assert [render(value=v) for v in ("active", "canceled", "past_due")] == ["Aktiv", "Opsagt", "Forfalden"]
    assert render(value="invoice.paid") == "invoice.paid" and render(value=None) == "—"


def test_audit_fields_are_labelled_and_nested(english):
    template = english.jinja_env.from_string('{% from "_macros/fields.html" import fields %}{{ fields(values) }}')
    html = template.render(values={"recovery": {"gaps": 2, "currency": "eur"}, "kinds": ["A", "B"],
                                   "made_up_key": True, "empty": [], "customer": "<cus_1>"})
    assert '<dt>Disaster recovery</dt><dd><dl class="fields">' in html
    assert '<div data-field="gaps"><dt>Gaps</dt><dd>2</dd></div>' in html
    assert '<ul class="field-list"><li>A</li><li>B</li></ul>' in html
    assert "<dt>made_up_key</dt><dd>yes</dd>" in html and "<dt>empty</dt><dd>—</dd>" in html
    assert "<dd>&lt;cus_1&gt;</dd>" in html and "{'" not in html
    stamp = template.render(values={"cutoff": "2026-11-01T00:00:00+00:00", "note": "T-shirt"})
    assert '<dd><time datetime="2026-11-01T00:00:00Z">Nov 1, 2026, 12:00:00\u202fAM UTC</time></dd>' in stamp
    assert "<dd>T-shirt</dd>" in stamp


@pytest.fixture
def danish_books(data):
    with data() as session:
        tenant = make_tenant(session, name="Sønderjylland Sejl ApS")
        make_subscription(session, tenant_id=tenant.id, status="canceled", plan="standard",
                          current_period_end=AT + timedelta(days=3))
        archive_event(session, id="evt_da_1", stripe_created_at=AT, type="invoice.paid", api_version="2025-03-31.basil",
                      payload={"id": "evt_da_1", "object": "event"}, payload_hash="d" * 64, status="processed")
        session.add(Operator(id="oid-ada", name="Ada Admin", email="ada@example.com", is_admin=True))
        session.flush()
        session.add(OperatorAction(operator_id="oid-ada", action="sync", target_tenant_id=tenant.id, reason="tjek",
                                   at=AT, result={"appended": 3, "recovery": {"gaps": 1}}))
        tenant_id = tenant.id
    return tenant_id


def test_danish_pages_translate_statuses_times_and_fields(client, admin_headers, danish_books):
    headers = {**admin_headers, **DA}
    audit = client.get("/audit", headers=headers).get_data(as_text=True)
    assert '<time datetime="2026-12-06T20:41:07Z">6. dec. 2026 20.41.07 UTC</time>' in audit
    assert "<dt>Katastrofegendannelse</dt>" in audit and "{&#39;" not in audit and "appended:" not in audit
    event = client.get("/stripe-events/evt_da_1", headers=headers).get_data(as_text=True)
    assert '<span class="badge">processed</span>' not in event
    overview = client.get(f"/accounts/{danish_books}", headers=headers).get_data(as_text=True)
    assert re.search(r'<span class="badge subscription-canceled">Opsagt</span>', overview), "raw Stripe status shown"
    card = client.get("/dashboard/cards/mrr-trend?period=30", headers={**headers, "HX-Request": "true"})
    assert "6. dec. 2026 20.41.07 UTC" in card.get_data(as_text=True)  # Data current through …, with its zone
