"""The ECB's reference rates: parsing its CSV, storing it, and the one conversion rule (`fx_rate`), checked against
rates read off the ECB's own history by hand."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backoffice.fx import rates
from backoffice.fx.models import FxRate

SAMPLE = """Date,USD,JPY,DKK,GBP,SEK,CYP,
2026-03-02,1.0500,160.00,7.4600,0.8400,11.2000,N/A,
2026-02-27,1.0400,159.00,7.4610,0.8350,11.1000,N/A,
2026-01-02,1.1000,170.00,7.4700,0.8700,11.5000,N/A,
""".splitlines(keepends=True)


@pytest.fixture
def stored(db_session):
    rates.refresh(db_session, rates.parse(SAMPLE))
    db_session.flush()
    return db_session


def test_parse_takes_every_rate_and_skips_na():
    parsed = list(rates.parse(SAMPLE))
    assert len(parsed) == 15 and {rate.currency for rate in parsed} == {"USD", "JPY", "DKK", "GBP", "SEK"}
    assert rates.Rate(date(2026, 2, 27), "GBP", Decimal("0.8350")) in parsed


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"), ("Day,USD\n", "first column must be Date"), ("Date,US1\n", "not an ISO 4217"),
    ("Date,USD\n2026-13-01,1.1\n", "line 2: '2026-13-01' is not a date"),
    ("Date,USD\n2026-01-02,abc\n", "line 2: USD 'abc' is not a number"),
    ("Date,USD\n2026-01-02,-1\n", "not a positive rate"), ("Date,USD\n2026-01-02,NaN\n", "not a positive rate"),
])
def test_a_file_that_is_not_the_ecbs_is_refused_with_its_line(text, message):
    with pytest.raises(rates.RatesFileError, match=message):
        list(rates.parse(text.splitlines(keepends=True)))


def test_the_bundled_history_is_the_ecbs():
    bundled = list(rates.parse(rates.bundled_lines()))
    by_day = {(rate.currency, rate.day): rate.per_eur for rate in bundled}
    # Read off the ECB's published series: the euro's first day, 4 January 1999, and the franc's peg.
    assert by_day[("USD", date(1999, 1, 4))] == Decimal("1.1789")
    assert by_day[("DKK", date(1999, 1, 4))] == Decimal("7.4501")
    assert max(rate.day for rate in bundled) >= date(2026, 1, 1)
    assert "EUR" not in {rate.currency for rate in bundled}


def test_fx_rate_takes_the_latest_ecb_day_on_or_before(stored):
    def rate(source, target, day):
        found = stored.scalar(select(func.fx_rate(source, target, day)))
        return None if found is None else round(found, 12)

    assert rate("USD", "EUR", date(2026, 3, 2)) == round(1 / Decimal("1.0500"), 12)
    # Saturday 28 February and Sunday 1 March: Friday's rate.
    assert rate("USD", "EUR", date(2026, 3, 1)) == round(1 / Decimal("1.0400"), 12)
    assert rate("EUR", "DKK", date(2026, 2, 28)) == Decimal("7.4610")
    # Cross rates go through the euro: 1 GBP = 7.4600 / 0.8400 DKK on 2 March.
    assert rate("GBP", "DKK", date(2026, 3, 2)) == round(Decimal("7.4600") / Decimal("0.8400"), 12)
    assert rate("SEK", "SEK", date(1990, 1, 1)) == 1
    assert rate("USD", "EUR", date(2026, 1, 1)) is None  # before the first rate stored


def test_rates_for_and_convert(stored):
    found = rates.rates_for(stored, ["USD", "EUR", "DKK"], [date(2026, 3, 2), date(2026, 2, 28)], "DKK")
    assert found[("EUR", date(2026, 2, 28))] == Decimal("7.4610") and found[("DKK", date(2026, 3, 2))] == 1
    assert rates.convert(Decimal("49.00"), found[("USD", date(2026, 3, 2))]) == Decimal("348.13")  # 49 × 7.46/1.05
    assert rates.convert(Decimal("0.125"), Decimal("1")) == Decimal("0.12")  # half-even, once
    with pytest.raises(rates.MissingRate, match="no exchange rate for USD on or before 2025-12-31"):
        rates.rates_for(stored, ["USD"], [date(2025, 12, 31)], "EUR")


def test_a_revised_rate_replaces_the_old_one(stored):
    revised = rates.refresh(stored, rates.parse(["Date,USD\n", "2026-03-02,1.0511\n"]))
    assert (revised.rates, revised.currencies, revised.first) == (1, 1, date(2026, 3, 2))
    assert stored.get(FxRate, ("USD", date(2026, 3, 2))).per_eur == Decimal("1.0511")


def test_the_command_loads_a_file_and_refuses_a_bad_one(app, db_connection, tmp_path):  # rolled back after
    good = tmp_path / "rates.csv"
    good.write_text("".join(SAMPLE))
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,USD\n2026-01-02,x\n")
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["fx", "refresh", "--file", str(bad)])
    assert refused.exit_code == 1 and "line 2: USD 'x' is not a number" in refused.output
    loaded = runner.invoke(args=["fx", "refresh", "--file", str(good)])
    assert loaded.exit_code == 0, loaded.output
    assert "15 rates of 5 currencies, 2026-01-02 to 2026-03-02" in loaded.output
