"""The one list URL convention (DESIGN §8): parse it strictly, and build every link a list page shows.

`q` search; one repeated parameter per multi-select filter; one parameter per single choice; boolean
filters as `name=true`; `sort=field` or `sort=-field`; `page` and `per_page` (10–100, default 25); an
opaque `after` keyset cursor. Anything else malformed is a 400 that says what was wrong.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from babel.numbers import list_currencies
from flask import abort, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from backoffice import search
from backoffice.paging import BadCursor, PageOutOfRange

PER_PAGE_DEFAULT, PER_PAGE_MIN, PER_PAGE_MAX = 25, 10, 100
PER_PAGE_CHOICES = (10, 25, 50, 100)
# Far past any list's last page, and small enough that page × per_page stays an offset PostgreSQL takes (bigint).
PAGE_MAX = 1_000_000_000
MAX_VALUES_PER_FILTER = 10
PageT = TypeVar("PageT")


# A currency filter takes any ISO 4217 code (Babel's list); a page offers the currencies its rows are in.
CURRENCY_CODES = tuple(sorted(list_currencies()))


@dataclass(frozen=True)
class ListSpec:
    """What one list accepts: its sort fields, its filters and their allowed values."""

    endpoint: str
    sorts: tuple[str, ...]
    default_sort: str
    multi: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    single: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    max_values: Mapping[str, int] = field(default_factory=dict)
    csv_endpoint: str | None = None
    # Single-value parameters that name a record (an account id, an operator id): any short text.
    references: tuple[str, ...] = ()


def _bad(message: str):
    abort(400, description=message)


def _whole_number(args: MultiDict, name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name, "")
    if raw == "":
        return default
    # ASCII digits only: str.isdigit() also takes "²" and "٣", which int() then refuses; and a bound on the
    # length before int(), which refuses thousands of digits with an error of its own.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) or not low <= int(raw) <= high:
        _bad(_("%(name)s must be a whole number %(limit)s", name=name, limit=f"{low}–{high}"))
    return int(raw)


@dataclass(frozen=True)
class ListParams:
    """A list's state as its URL states it; `url()` and friends make the links that change one part."""

    spec: ListSpec
    q: str | None = None
    multi: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    single: Mapping[str, str | None] = field(default_factory=dict)
    flags: Mapping[str, bool] = field(default_factory=dict)
    sort: str = ""
    descending: bool = False
    page: int = 1
    per_page: int = PER_PAGE_DEFAULT
    after: str | None = None
    view_args: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_request(cls, spec: ListSpec, args: MultiDict | None = None) -> ListParams:
        """Parse the query string, or answer 400 with what was wrong."""
        args = request.args if args is None else args
        raw_q = args.get("q")
        try:
            search.normalize(raw_q)
        except search.SearchTooLong:
            _bad(_("The search is too long: at most %(max)d characters.", max=search.MAX_SEARCH_LENGTH))
        multi = {}
        for name, allowed in spec.multi.items():
            given = [value for value in args.getlist(name) if value != ""]
            unknown = [value for value in dict.fromkeys(given) if value not in allowed]
            if unknown:
                _bad(_("Unknown %(name)s: %(values)s. Choose from %(allowed)s.", name=name,
                       values=", ".join(unknown), allowed=", ".join(allowed)))
            # In the filter's own order, so that one selection has one URL.
            values = tuple(value for value in allowed if value in given)
            cap = spec.max_values.get(name, MAX_VALUES_PER_FILTER)
            if len(values) > cap:
                _bad(_("At most %(max)d values of %(name)s.", max=cap, name=name))
            multi[name] = values
        single = {}
        for name, allowed in spec.single.items():
            value = args.get(name) or None
            if value is not None and value not in allowed:
                _bad(_("Unknown %(name)s: %(values)s. Choose from %(allowed)s.", name=name, values=value,
                       allowed=", ".join(allowed)))
            single[name] = value
        for name in spec.references:
            value = (args.get(name) or "").strip() or None
            if value is not None and len(value) > search.MAX_SEARCH_LENGTH:
                _bad(_("%(name)s is too long.", name=name))
            single[name] = value
        flags = {}
        for name in spec.flags:
            value = args.get(name, "")
            if value not in ("", "true", "false"):
                _bad(_("%(name)s must be true or false.", name=name))
            flags[name] = value == "true"
        sort = args.get("sort") or spec.default_sort
        descending = sort.startswith("-")
        if sort.removeprefix("-") not in spec.sorts:
            _bad(_("Unknown sort %(sort)s. Choose from %(allowed)s, each with - for descending.", sort=sort,
                   allowed=", ".join(spec.sorts)))
        after = args.get("after") or None
        return cls(spec=spec, q=(raw_q or "").strip() or None, multi=multi, single=single,
                   flags=flags, sort=sort.removeprefix("-"), descending=descending,
                   page=_whole_number(args, "page", 1, 1, PAGE_MAX),
                   per_page=_whole_number(args, "per_page", PER_PAGE_DEFAULT, PER_PAGE_MIN, PER_PAGE_MAX),
                   after=after, view_args=dict(request.view_args or {}))

    # What the domain takes.

    @property
    def search(self) -> str | None:
        """The search as the queries take it: trimmed and lower-cased."""
        return search.normalize(self.q)

    def values(self, name: str) -> tuple[str, ...]:
        return tuple(self.multi.get(name, ()))

    def flag(self, name: str) -> bool:
        return bool(self.flags.get(name))

    def choice(self, name: str) -> str | None:
        return self.single.get(name)

    @property
    def filtered(self) -> bool:
        """Whether anything narrows the list (the empty state then says "no results", not "nothing yet")."""
        return bool(self.q or any(self.multi.values()) or any(self.single.values()) or any(self.flags.values()))

    # Links.

    def query(self, **changes: Any) -> dict[str, Any]:
        """The query string as a dict for url_for, with `changes` applied; a change of anything but the page
        starts again at page 1."""
        state: dict[str, Any] = {"q": self.q}
        state.update({name: list(values) for name, values in self.multi.items()})
        state.update(self.single)
        state.update({name: "true" if on else None for name, on in self.flags.items()})
        state["sort"] = ("-" if self.descending else "") + self.sort
        state["per_page"] = self.per_page
        state["page"] = self.page
        state["after"] = self.after
        if not ({"page", "after"} & changes.keys()):
            state["page"], state["after"] = None, None
        state.update(changes)
        if state.get("sort") == self.spec.default_sort:
            state["sort"] = None
        if state.get("per_page") == PER_PAGE_DEFAULT:
            state["per_page"] = None
        if state.get("page") == 1:
            state["page"] = None
        return {name: value for name, value in state.items() if value not in (None, "", [])}

    def url(self, endpoint: str | None = None, **changes: Any) -> str:
        return url_for(endpoint or self.spec.endpoint, **self.view_args, **self.query(**changes))

    @property
    def per_page_choices(self) -> tuple[int, ...]:
        return PER_PAGE_CHOICES

    def current_url(self) -> str:
        """This very list in its canonical form (what the address bar shows after an htmx swap)."""
        return self.url(page=self.page, after=self.after)

    def csv_url(self) -> str:
        """The same rows as CSV: the list's path plus `.csv`, its filters and sort, all pages."""
        assert self.spec.csv_endpoint, "this list has no CSV export"
        return self.url(self.spec.csv_endpoint, per_page=None, page=None, after=None)

    def sort_url(self, name: str) -> str:
        """Sort by `name`; a second click on the sorted column reverses it."""
        descending = not self.descending if self.sort == name else False
        return self.url(sort=("-" if descending else "") + name)

    def aria_sort(self, name: str) -> str:
        if self.sort != name:
            return "none"
        return "descending" if self.descending else "ascending"

    def without(self, name: str, value: str | None = None) -> str:
        """The list with one filter (or one of its values) removed."""
        if name in self.multi and value is not None:
            return self.url(**{name: [v for v in self.multi[name] if v != value]})
        return self.url(**{name: None})

    def cleared(self) -> str:
        """The list with every filter and the search removed, sort and page size kept."""
        return url_for(self.spec.endpoint, **self.view_args,
                       **{k: v for k, v in self.query().items() if k in ("sort", "per_page")})

    def page_url(self, number: int) -> str:
        return self.url(page=number, after=None)

    def next_url(self, cursor: str | None) -> str:
        """The next page: by cursor when there is one (deep pages stay fast), else by number."""
        return self.url(page=self.page + 1, after=cursor)


def fetch_or_400(call: Callable[[], PageT]) -> PageT:
    """Run a page query; a page past the end or a foreign cursor is the operator's 400, with the way out."""
    try:
        return call()
    except PageOutOfRange as error:
        _bad(_("Page %(page)d does not exist: the list has %(pages)d pages.", page=error.page, pages=error.pages))
    except BadCursor:
        _bad(_("The after cursor is not one this list made; start again from page 1."))
