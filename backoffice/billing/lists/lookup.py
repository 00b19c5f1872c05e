"""What a pasted id or address names: the accounts, invoices and archived events that carry it.

Every list narrows by the result when its search is a whole id or email (`search.is_exact`), instead of matching
names. Each step is an equality on an index: tenants, subscriptions (customer, subscription: migration 0017),
payment transactions and the archive (event id, and its object's id: migration 0017); an owner's address by
`lower(email)`. A refund names only its charge, and a charge or a credit note its invoice, so one hop through
the archive ties them to the invoice and the account.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Text, func, literal_column, or_, select, union
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.models import Tenant, User
from backoffice.billing.models import (
    PaymentTransaction,
    StripeEvent,
    StripeEventState,
    Subscription,
    archived_with_states,
)

TENANTS = Tenant.__table__
USERS = User.__table__
SUBSCRIPTIONS = Subscription.__table__
PAYMENTS = PaymentTransaction.__table__
EVENTS = StripeEvent.__table__
STATES = StripeEventState.__table__

OWNER = "owner"
# The objects that stand for a whole account: their id finds the account's rows in every list.
ACCOUNT_OBJECTS = ("customer", "subscription")


def _object_field(name: str):
    """A field of the archived event's `data.object`, written as migration 0017's index is (literal, unbound)."""
    return literal_column(f"(((stripe_events.payload -> 'data') -> 'object') ->> '{name}')", Text)


OBJECT_ID = _object_field("id")
OBJECT_KIND = _object_field("object")
OBJECT_INVOICE = _object_field("invoice")
OBJECT_CHARGE = _object_field("charge")


@dataclass(frozen=True)
class Carriers:
    """The rows a whole id or email names. `invoices` and `events` are empty when it names an account only
    (a customer, a subscription, an owner's address): the lists then show that account's rows."""

    tenants: frozenset[str] = field(default_factory=frozenset)
    invoices: frozenset[str] = field(default_factory=frozenset)
    events: frozenset[str] = field(default_factory=frozenset)

    @property
    def names_objects(self) -> bool:
        """Whether the id names invoices or events rather than only an account."""
        return bool(self.invoices or self.events)

    @property
    def whole_accounts(self) -> frozenset[str]:
        """The accounts the id stands for as a whole (customer, subscription, account, owner), whose users it finds;
        none for an invoice, a charge, a refund, a credit note or an event, which users do not carry."""
        return frozenset() if self.names_objects else self.tenants


def _events_naming(session: Session, ids: Iterable[str]) -> list[dict[str, str | None]]:
    """The archived events that are, or whose object is, one of these ids."""
    wanted = list(ids)
    if not wanted:
        return []
    rows = session.execute(select(EVENTS.c.id, STATES.c.tenant_id, EVENTS.c.stripe_customer_id,
                                  OBJECT_ID.label("object_id"), OBJECT_KIND.label("kind"),
                                  OBJECT_INVOICE.label("invoice"), OBJECT_CHARGE.label("charge"))
                           .select_from(archived_with_states())
                           .where(or_(EVENTS.c.id.in_(wanted), OBJECT_ID.in_(wanted))))
    return [dict(row._mapping) for row in rows]


def _tenants_of_customers(session: Session, customers: set[str]) -> set[str]:
    if not customers:
        return set()
    return set(session.scalars(select(SUBSCRIPTIONS.c.tenant_id).where(SUBSCRIPTIONS.c.stripe_customer_id.in_(customers))))


def _owners(session: Session, email: str) -> Carriers:
    tenants = session.scalars(select(USERS.c.tenant_id).where(func.lower(USERS.c.email) == email.lower(),
                                                              USERS.c.role == OWNER, USERS.c.deleted_at.is_(None)))
    return Carriers(tenants=frozenset(tenants))


def _ids(session: Session, text: str) -> Carriers:
    tenants: set[str] = set(session.scalars(union(
        select(TENANTS.c.id).where(TENANTS.c.id == text),
        select(SUBSCRIPTIONS.c.tenant_id).where(
            or_(SUBSCRIPTIONS.c.stripe_customer_id == text, SUBSCRIPTIONS.c.stripe_subscription_id == text)))))
    named = _events_naming(session, [text])
    tenants |= {event["tenant_id"] for event in named if event["tenant_id"]}
    tenants |= _tenants_of_customers(session, {event["stripe_customer_id"] for event in named
                                               if event["stripe_customer_id"]})
    whole_account = bool(tenants & {text}) or any(event["kind"] in ACCOUNT_OBJECTS and event["object_id"] == text
                                                  for event in named)
    if whole_account or not named and tenants:
        # A customer or a subscription is the whole account: every list shows that account's rows.
        return Carriers(tenants=frozenset(tenants))
    # A refund names its charge only: the charge's own events name the invoice and the customer.
    charges = {event["charge"] for event in named if event["charge"]} - {event["object_id"] for event in named}
    named += _events_naming(session, charges)
    invoices = {text} | {event["invoice"] for event in named if event["invoice"]}
    invoices |= {event["object_id"] for event in named if event["kind"] == "invoice" and event["object_id"]}
    found_invoices = {row.id: row.tenant_id for row in session.execute(
        select(PAYMENTS.c.id, PAYMENTS.c.tenant_id).where(PAYMENTS.c.id.in_(invoices)))}
    tenants |= set(found_invoices.values())
    tenants |= {event["tenant_id"] for event in named if event["tenant_id"]}
    tenants |= _tenants_of_customers(session, {event["stripe_customer_id"] for event in named
                                               if event["stripe_customer_id"]})
    if any(event["id"] == text for event in named):
        events = {text}  # one archived event: its own ledger row, not its invoice's others
    else:
        # The ledger rows an invoice, a charge or a credit note led to come from the invoice's own events.
        events = {event["id"] for event in named} | {event["id"] for event in _events_naming(session, found_invoices)}
    return Carriers(tenants=frozenset(tenants), invoices=frozenset(found_invoices), events=frozenset(events))


def accounts_named(session: Session, text: str | None) -> frozenset[str]:
    """The accounts a pasted customer, subscription or account id stands for (the users list's Stripe-id search)."""
    carriers = find_carriers(session, text)
    return carriers.whole_accounts if carriers is not None else frozenset()


def find_carriers(session: Session, text: str | None, known: Carriers | None = None) -> Carriers | None:
    """The accounts, invoices and events a whole id or email names; None when the search is a name fragment.
    `known` is what a caller that searches several lists found already (the global search)."""
    if known is not None:
        return known
    if text is None or not search.is_exact(text):
        return None
    if search.looks_like_email(text):
        return _owners(session, text)
    return _ids(session, text)
