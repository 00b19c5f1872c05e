"""VAT rates per customer country as the sandbox's commands take them (`DK=25,DE=19`), for `flask sandbox serve`
and `flask demo load` alike."""
from __future__ import annotations

import re
from decimal import Decimal

import click

VAT_ENTRY = re.compile(r"^([A-Za-z]{2})=(\d+(?:\.\d+)?)$")


def parse_vat_rates(value: str) -> dict[str, Decimal]:
    """Parse `DK=25,DE=19` into VAT rates (percent) per customer country."""
    rates: dict[str, Decimal] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        match = VAT_ENTRY.match(entry)
        if match is None:
            raise click.BadParameter(f"{entry!r} is not COUNTRY=RATE, e.g. DK=25")
        rate = Decimal(match.group(2))  # the pattern admits only plain decimals
        if rate > 100:
            raise click.BadParameter(f"{entry!r}: a VAT rate is a percentage up to 100")
        rates[match.group(1).upper()] = rate
    return rates
