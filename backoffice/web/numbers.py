"""Numbers as the operator's locale writes them, at a fraction of Babel's cost per number.

Babel formats a number in about 40-60 µs, and a page of figures (the SaaS metrics over 24 months) shows about a
thousand. Here Babel's own output for one number gives each (locale, kind of number) its affixes once; every
number after that is Python's grouping with the locale's symbols and those affixes. The result is checked
against Babel on probe values (rounding, signs, grouping, zero) when the formatter is made: a locale whose
writing that cannot reproduce (Indian grouping, say) keeps Babel for every number, so the text never differs.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import (
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
    get_decimal_symbol,
    get_group_symbol,
)

Formatter = Callable[[Decimal], str]
PROBES = tuple(Decimal(text) for text in (
    "0", "1", "-1", "0.5", "-0.5", "12.5", "999.99", "1000", "-1234.56", "12345.675", "1234567.891", "0.005",
    "0.015", "2.675", "-1000000", "100.3", "-82.5", "45.1", "-0.001", "-0.0"))
SAMPLE = Decimal("1234567")


class _Grouped:
    """A number with `digits` decimals (a function of the number), grouped by thousands, between affixes."""

    def __init__(self, locale: Locale, digits: Callable[[Decimal], int]):
        self.digits = digits
        self.symbols = str.maketrans({",": get_group_symbol(locale), ".": get_decimal_symbol(locale)})
        self.affixes: dict[bool, tuple[str, str]] = {}

    def core(self, value: Decimal) -> str:
        digits = self.digits(value)
        rounded = abs(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
        return f"{rounded:,.{digits}f}".translate(self.symbols)

    def learn(self, reference: Formatter) -> bool:
        """Take the affixes from Babel's writing of a positive and a negative number; False if it holds no core."""
        for negative in (False, True):
            written, core = reference(-SAMPLE if negative else SAMPLE), self.core(SAMPLE)
            at = written.find(core)
            if at < 0:
                return False
            self.affixes[negative] = (written[:at], written[at + len(core):])
        return True

    def __call__(self, value: Decimal) -> str:
        prefix, suffix = self.affixes[value.is_signed()]  # -0.001 is "-0.00", as Babel writes it
        return f"{prefix}{self.core(value)}{suffix}"


def _checked(locale: Locale, digits: Callable[[Decimal], int], reference: Formatter) -> Formatter:
    fast = _Grouped(locale, digits)
    if fast.learn(reference) and all(fast(value) == reference(value) for value in PROBES):
        return fast
    return reference


def _significant(value: Decimal) -> int:
    """The decimals a number shows when it is written without trailing zeros (Babel's unquantized percent)."""
    return max(0, -value.normalize().as_tuple().exponent)


@lru_cache(maxsize=256)
def money_format(locale: Locale, currency: str) -> Formatter:
    """An amount in `currency` as `format_currency` writes it in `locale` (the currency's own decimals)."""
    places = get_currency_precision(currency)
    return _checked(locale, lambda value: places, lambda value: format_currency(value, currency, locale=locale))


@lru_cache(maxsize=64)
def count_format(locale: Locale) -> Formatter:
    """A whole number with the locale's grouping (`#,##0`)."""
    return _checked(locale, lambda value: 0, lambda value: format_decimal(value, format="#,##0", locale=locale))


@lru_cache(maxsize=64)
def percent_format(locale: Locale) -> Formatter:
    """A percentage given ×100 (8.2 for 8.2 %), with the decimals it has (`format_percent`, unquantized)."""
    def reference(value: Decimal) -> str:
        return format_percent(value / 100, locale=locale, decimal_quantization=False)
    return _checked(locale, _significant, reference)
