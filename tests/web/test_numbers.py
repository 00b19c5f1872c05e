"""The fast number formats write exactly what Babel writes, in every locale and currency they take on, and hand
a locale they cannot reproduce back to Babel."""
from __future__ import annotations

import random
from decimal import Decimal

import pytest
from babel import Locale
from babel.numbers import format_currency, format_decimal, format_percent

from backoffice.web import numbers

LOCALES = ("en", "da", "de", "fr", "sv", "nb", "pl", "ar", "ja", "en_GB", "hi", "de_CH")
CURRENCIES = ("EUR", "USD", "DKK", "SEK", "GBP", "JPY", "BHD")


def amounts() -> list[Decimal]:
    rng = random.Random(20)
    return ([Decimal(rng.randint(-10**11, 10**11)) / 1000 for _ in range(400)]
            + [Decimal(text) for text in ("0", "-0", "-0.0", "0.005", "0.015", "-0.004", "999.995", "1e3", "12.5")])


@pytest.mark.parametrize("locale", LOCALES)
def test_money_counts_and_percentages_match_babel(locale):
    where = Locale.parse(locale)
    values = amounts()
    for currency in CURRENCIES:
        fast = numbers.money_format(where, currency)
        assert [fast(value) for value in values] == [format_currency(value, currency, locale=where) for value in values]
    counts = [value.to_integral_value() for value in values]
    assert [numbers.count_format(where)(value) for value in counts] == [
        format_decimal(value, format="#,##0", locale=where) for value in counts]
    shares = [(value / 1000).quantize(Decimal("0.1")) for value in values]
    assert [numbers.percent_format(where)(value) for value in shares] == [
        format_percent(value / 100, locale=where, decimal_quantization=False) for value in shares]


def test_a_locale_whose_grouping_python_cannot_write_keeps_babel():
    # Indian grouping (12,34,567) is not Python's thousands: those numbers stay Babel's, and still right.
    indian = Locale.parse("hi")
    assert numbers.money_format(indian, "EUR")(Decimal("1234567.891")) == "€12,34,567.89"
    assert not isinstance(numbers.money_format(indian, "EUR"), numbers._Grouped)
    assert isinstance(numbers.money_format(Locale.parse("da"), "EUR"), numbers._Grouped)
