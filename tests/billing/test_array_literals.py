"""The replay's array literals, read back by PostgreSQL: every value arrives as it left, or the statement fails."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, Text, func, select
from sqlalchemy.exc import DataError
from sqlalchemy.types import JSON

from backoffice.billing.replay.array_literals import ColumnArrays, number_array, text_array, time_array

AWKWARD = ["plain", 'say "hi"', "back\\slash", "comma, brace } { quote'", "NULL", "", " padded ", "æøå ✓ 日本",
           "tab\there", "new\nline", "\\\"", "trailing\\"]


def round_trip(session, types, columns):
    arrays = ColumnArrays(types)
    rows = func.unnest(*arrays.arrays.values()).table_valued(*types).render_derived()
    return session.execute(select(*rows.c), arrays.of_columns(columns)).all()


def test_text_survives_quotes_backslashes_braces_and_the_word_null(db_session):
    rows = round_trip(db_session, {"value": Text()}, {"value": AWKWARD})
    assert [row.value for row in rows] == AWKWARD


def test_none_is_null_and_an_empty_list_is_no_rows(db_session):
    values = ["a", None, 'b"', None]
    assert [row.value for row in round_trip(db_session, {"value": Text()}, {"value": values})] == values
    assert round_trip(db_session, {"value": Text()}, {"value": []}) == []
    assert text_array([]) == "{}" and text_array([None]) == "{NULL}"


def test_numbers_dates_timestamps_and_booleans_keep_their_values(db_session):
    copenhagen = timezone(timedelta(hours=1))
    columns = {
        "amount": [Decimal("12.50"), Decimal("-0.01"), None, Decimal("1E+2"), Decimal("99999999999999.99")],
        "position": [0, -3, None, 2**31 - 1, 7],
        "at": [datetime(2026, 1, 31, 23, 59, 59, 123456, UTC), datetime(2026, 2, 1, 0, 30, tzinfo=copenhagen),
               None, datetime(1999, 12, 31, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)],
        "day": [date(2026, 2, 28), None, date(2024, 2, 29), date(2000, 1, 1), date(2026, 12, 7)],
        "flag": [True, False, None, True, False],
    }
    rows = round_trip(db_session, {"amount": Numeric(18, 2), "position": Integer(), "at": DateTime(timezone=True),
                                   "day": Date(), "flag": Boolean()}, columns)
    for name, values in columns.items():
        assert [getattr(row, name) for row in rows] == values, name
    assert rows[1].at == datetime(2026, 1, 31, 23, 30, tzinfo=UTC)  # the offset kept: the same instant


def test_a_nul_in_a_value_fails_the_statement_instead_of_splitting_the_value(db_session):
    with pytest.raises(DataError):
        round_trip(db_session, {"value": Text()}, {"value": ["one\x00two", "three"]})


def test_floats_naive_timestamps_and_unknown_types_are_refused_before_the_database():
    with pytest.raises(TypeError, match="float"):
        number_array([Decimal("1.00"), 1.5])
    with pytest.raises(ValueError, match="naive"):
        time_array([datetime(2026, 1, 1)])  # noqa: DTZ001 (the naive timestamp is the point)
    with pytest.raises(TypeError, match="no array literal"):
        ColumnArrays({"payload": JSON()})
