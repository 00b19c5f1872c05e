"""Two accounts carrying every kind of id an operator pastes: customer, subscription, invoice, charge, refund, credit
note and event ids, and an owner's address. Shared by the lists' id-search tests, the global search's and its e2e."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from backoffice.accounts.models import User
from backoffice.billing.models import PaymentTransaction
from tests.factories import (
    OCCURRED_AT,
    archive_event,
    make_billing_event,
    make_subscription,
    make_tenant,
    payment_values,
)


@dataclass(frozen=True)
class Ids:
    tenant: str = "ten_Fjord00001"
    other_tenant: str = "ten_Other00001"
    customer: str = "cus_Fjord4Cust"
    subscription: str = "sub_Fjord4Subs"
    invoice: str = "in_Fjord4Inv01"
    credited_invoice: str = "in_Fjord4Inv02"
    other_invoice: str = "in_Other4Inv01"
    charge: str = "ch_Fjord4Chg01"
    refund: str = "re_Fjord4Ref01"
    credit_note: str = "cn_Fjord4Crn01"
    paid_event: str = "evt_Fjord4Paid1"
    created_event: str = "evt_Fjord4Crea1"
    owner_email: str = "Anna.Owner@fjord.example"
    member_email: str = "bo.member@fjord.example"
    owner_user: str = "usr_Fjord4Anna"
    tenant_name: str = "Fjord Consulting"


IDS = Ids()


def _event(session: Session, event_id: str, kind: str, obj: dict[str, object], *, customer: str | None,
           tenant: str | None) -> None:
    archive_event(session, id=event_id, stripe_created_at=OCCURRED_AT, type=kind, api_version="2025-03-31.basil",
                  payload={"id": event_id, "object": "event", "type": kind, "data": {"object": obj}},
                  payload_hash="c" * 64, status="processed", stripe_customer_id=customer, tenant_id=tenant)


def seed_ids(session: Session, ids: Ids = IDS) -> Ids:
    """Store the two accounts and everything that names them."""
    tenant = make_tenant(session, id=ids.tenant, name=ids.tenant_name)
    other = make_tenant(session, id=ids.other_tenant, name="Other Labs")
    subscription = make_subscription(session, tenant_id=tenant.id, stripe_customer_id=ids.customer,
                                     stripe_subscription_id=ids.subscription)
    other_subscription = make_subscription(session, tenant_id=other.id)
    session.add_all([
        User(id=ids.owner_user, tenant_id=tenant.id, email=ids.owner_email, first_name="Anna", last_name="Owner",
             role="owner"),
        User(id="usr_Fjord4Bo", tenant_id=tenant.id, email=ids.member_email, first_name="Bo", role="member"),
        # The same person owns nothing elsewhere: a member's address finds no account.
        User(id="usr_Other4Anna", tenant_id=other.id, email=ids.owner_email.lower(), role="member"),
        PaymentTransaction(**payment_values(subscription, id=ids.invoice)),
        PaymentTransaction(**payment_values(subscription, id=ids.credited_invoice, credited_amount=Decimal("49.00"),
                                            credit_noted_at=OCCURRED_AT, credit_note_url="https://example.com/cn")),
        PaymentTransaction(**payment_values(other_subscription, id=ids.other_invoice)),
    ])
    session.flush()
    account = {"customer": ids.customer, "tenant": tenant.id}
    _event(session, ids.created_event, "customer.subscription.created",
           {"id": ids.subscription, "object": "subscription", "customer": ids.customer}, **account)
    _event(session, ids.paid_event, "invoice.paid", {"id": ids.invoice, "object": "invoice", "customer": ids.customer},
           **account)
    _event(session, "evt_Fjord4Chg1", "charge.succeeded",
           {"id": ids.charge, "object": "charge", "invoice": ids.invoice, "customer": ids.customer}, **account)
    # A refund names neither customer nor invoice: only its charge.
    _event(session, "evt_Fjord4Ref1", "refund.created", {"id": ids.refund, "object": "refund", "charge": ids.charge},
           customer=None, tenant=None)
    _event(session, "evt_Fjord4Crn1", "credit_note.created",
           {"id": ids.credit_note, "object": "credit_note", "invoice": ids.credited_invoice, "customer": ids.customer},
           **account)
    make_billing_event(session, subscription=subscription, stripe_event_id=ids.created_event,
                       event_type="SubscriptionCreated", from_plan=None, to_plan="standard", previous_amount=Decimal("0"),
                       new_amount=Decimal("49.00"), amount_delta=Decimal("49.00"), committed_mrr=Decimal("49.00"),
                       movement="new", occurred_at=OCCURRED_AT)
    make_billing_event(session, subscription=subscription, stripe_event_id=ids.paid_event,
                       event_type="SubscriptionRenewed", from_plan="standard", to_plan="standard",
                       previous_amount=Decimal("49.00"), new_amount=Decimal("49.00"), amount_delta=Decimal("0"),
                       committed_mrr=Decimal("49.00"), movement=None, position=2)
    make_billing_event(session, subscription=other_subscription, event_type="SubscriptionCreated", from_plan=None,
                       to_plan="standard", previous_amount=Decimal("0"), new_amount=Decimal("49.00"),
                       amount_delta=Decimal("49.00"), committed_mrr=Decimal("49.00"), movement="new")
    return ids
