"""/saas-metrics on the hand-worked lifecycles of tests/read/test_saas_metrics.py: the figures as the page shows
them, each linked to the accounts behind it, that list and its CSV, bad input, and the page off without billing."""
from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest

from tests.read.test_saas_metrics import lifecycle  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("metrics_data")


@pytest.fixture
def metrics_data(harness, lifecycle):  # noqa: F811
    lifecycle(harness)


def cells(body: str, month: str) -> list[str]:
    row = re.search(rf'<tr data-month="{month}">(.*?)</tr>', body, re.S).group(1)
    return [re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]


def test_the_page_shows_the_hand_worked_months(client, operator_headers):
    body = client.get("/saas-metrics?period=6&through=2026-03", headers=operator_headers).get_data(as_text=True)
    # Month, MRR, paying, new, expansion, contraction, churn, reactivation, lost, logo churn, gross, net, NRR, GRR.
    assert cells(body, "2026-02") == ["Feb 2026", "€180.50", "3", "—", "—", "—", "−€148.00", "—", "2", "40%",
                                      "45.1%", "45.1%", "54.9%", "54.9%"]
    assert cells(body, "2026-03") == ["Mar 2026", "€329.50", "4", "—", "+€50.00", "—", "—", "+€99.00", "0", "0%",
                                      "0%", "-82.5%", "127.7%", "100%"]
    assert cells(body, "2025-12") == ["Dec 2025", "€0.00", "0", "—", "—", "—", "—", "—", "0", "—", "—", "—", "—",
                                      "—"]
    assert "€3,954.00" in body  # ARR = 12 × 329.50
    assert 'href="/saas-metrics/accounts?month=2026-02&amp;figure=churn"' in body
    assert 'href="/saas-metrics/accounts?month=2026-02&amp;figure=churned"' in body
    # The cohort grid is a card the page loads apart, for the same period and month.
    assert 'hx-get="/saas-metrics/cohorts?period=6&amp;cohort=logos&amp;through=2026-03"' in body
    assert 'data-cohort=' not in body
    grid = client.get("/saas-metrics/cohorts?period=6&through=2026-03",
                      headers={**operator_headers, "HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in grid
    cohort = re.search(r'<tr data-cohort="2026-01">(.*?)</tr>', grid, re.S).group(1)
    assert re.findall(r'data-offset="(\d)"[^>]*>([^<]+)<', cohort) == [("0", "100%"), ("1", "60%"), ("2", "80%")]
    assert 'class="num heat heat-6"' in cohort and cohort.count("<td></td>") == 3  # six months wide
    # Every tile opens the accounts behind it: ARR, ARPA and LTV the accounts paying now; the averages' months
    # the churn and contraction (LTV), or the lost accounts (lifetime), of each month averaged.
    tiles = {name: re.sub(r"\s+", " ", tile) for name, tile in
             re.findall(r'<article class="kpi" data-metric="([\w-]+)">(.*?)</article>', body, re.S)}
    paying_now = '<a href="/saas-metrics/accounts?month=2026-03&amp;figure=paying">'
    assert paying_now + "€3,954.00</a>" in tiles["arr"] and paying_now + "€82.38</a>" in tiles["arpa"]
    assert tiles["ltv"].startswith("<header>LTV</header> <p class=\"kpi-value\">" + paying_now)
    assert re.findall(r'month=(\d{4}-\d\d)&amp;figure=lost">(\w+ \d{4})<', tiles["ltv"]) == [
        ("2025-12", "Dec 2025"), ("2026-01", "Jan 2026"), ("2026-02", "Feb 2026")]
    assert re.findall(r'month=(\d{4}-\d\d)&amp;figure=churned"', tiles["lifetime"]) == ["2025-12", "2026-01", "2026-02"]
    assert '<a href="/saas-metrics/accounts?month=2026-02&amp;figure=lost">45.1%</a>' in body


def test_the_cohort_switch_renders_mrr_alone_for_htmx(client, operator_headers):
    fragment = client.get("/saas-metrics/cohorts?period=6&cohort=mrr&through=2026-03",
                          headers={**operator_headers, "HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'data-view="mrr"' in text
    # Each switch swaps the grid and puts the page's own address (with its view) in the history.
    assert 'hx-push-url="/saas-metrics?period=6&amp;cohort=logos&amp;through=2026-03"' in text
    # Without JavaScript the card's link opens the grid as a page of its own.
    page = client.get("/saas-metrics/cohorts?period=6&cohort=mrr&through=2026-03", headers=operator_headers)
    assert "<html" in page.get_data(as_text=True) and 'data-view="mrr"' in page.get_data(as_text=True)
    cohort = re.search(r'<tr data-cohort="2026-01">(.*?)</tr>', text, re.S).group(1)
    # 180.50 / 328.50 and 329.50 / 328.50
    assert re.findall(r'data-offset="(\d)"[^>]*>([^<]+)<', cohort) == [("0", "100%"), ("1", "54.9%"),
                                                                       ("2", "100.3%")]


def test_the_accounts_behind_a_figure_and_their_csv(client, operator_headers):
    churned = client.get("/saas-metrics/accounts?month=2026-02&figure=churned", headers=operator_headers)
    body = churned.get_data(as_text=True)
    assert churned.status_code == 200 and "2 accounts" in body
    assert re.findall(r'href="/accounts/(ten_metrics_\w)"', body) == ["ten_metrics_B", "ten_metrics_E"]
    paying = client.get("/saas-metrics/accounts?month=2026-03&figure=paying&per_page=10",
                        headers=operator_headers).get_data(as_text=True)
    assert re.findall(r'href="/accounts/(ten_metrics_\w)"', paying) == [f"ten_metrics_{n}" for n in "ACDE"]
    # Pages by account name, a cursor after the first page.
    first = client.get("/saas-metrics/accounts?month=2026-03&figure=paying&per_page=10", headers=operator_headers)
    assert "Page 1 of 1" not in first.get_data(as_text=True)  # one page: no pager
    assert client.get("/saas-metrics/accounts?month=2026-03&figure=paying&page=9",
                      headers=operator_headers).status_code == 400  # past the last page
    none = client.get("/saas-metrics/accounts?month=2025-03&figure=churned", headers=operator_headers)
    assert 'data-testid="empty-state"' in none.get_data(as_text=True)
    export = client.get("/saas-metrics/accounts.csv?month=2026-03&figure=expansion", headers=operator_headers)
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["account_id"], r["mrr_start"], r["mrr_end"], r["expansion"]) for r in rows] == [
        ("ten_metrics_A", "49.00", "99.00", "50.00")]
    assert rows[0]["month"] == date(2026, 3, 1).isoformat()
    # What the gross MRR churn rate divides: February's churn and contraction, B's and E's.
    lost = client.get("/saas-metrics/accounts.csv?month=2026-02&figure=lost", headers=operator_headers)
    rows = list(csv.DictReader(io.StringIO(lost.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["account_id"], r["churn"], r["contraction"]) for r in rows] == [
        ("ten_metrics_B", "-99.00", "0.00"), ("ten_metrics_E", "-49.00", "0.00")]


@pytest.mark.parametrize("query", ["period=5", "period=x", "cohort=both", "through=2026-3", "through=9999-01"])
def test_bad_page_parameters_are_400(client, operator_headers, query):
    assert client.get(f"/saas-metrics?{query}", headers=operator_headers).status_code == 400
    assert client.get(f"/saas-metrics/cohorts?{query}", headers=operator_headers).status_code == 400


@pytest.mark.parametrize("query", ["figure=churn", "month=2026-02", "month=2026-13&figure=churn",
                                   "month=26-02&figure=churn", "month=2026-02&figure=revenue",
                                   "month=２０２６-02&figure=churn"])
def test_bad_drill_down_parameters_are_400(client, operator_headers, query):
    assert client.get(f"/saas-metrics/accounts?{query}", headers=operator_headers).status_code == 400


def test_without_public_billing_there_is_no_metrics_page(client, operator_headers, settings):
    settings(PUBLIC_SUBSCRIPTION_ENABLED=False)
    assert client.get("/saas-metrics", headers=operator_headers).status_code == 404
