"""Payloads read ahead of `replay --all`'s batches: only bodies, one batch ahead, never in place of what the
customer's lock guards (which events there are, and their statuses)."""
import logging
import subprocess
import sys
import threading

from sqlalchemy import select

from backoffice.billing.models import PaymentTransaction, StripeEvent, StripeEventState
from backoffice.billing.replay import ReadAhead, Replayer, ReplaySettings, read_payloads
from backoffice.billing.replay.tasks import gateway
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from backoffice.jobs import in_process_runner
from tests.billing.test_scenario_ledgers import EXPECTED

T = "ten_read_ahead"
BATCHES = [[f"cus_{n}a", f"cus_{n}b"] for n in range(6)]


class Recorded(ReadAhead):
    """Reads nothing: records which batches were read, in order."""

    def __init__(self, batches):
        super().__init__(engine=object(), batches=batches)
        self.read: list[list[str]] = []
        self.lock = threading.Lock()

    def _read(self, engine, customer_ids):
        with self.lock:
            self.read.append(customer_ids)
        return {f"evt_of_{customer_id}": {} for customer_id in customer_ids}


def test_one_batch_is_read_ahead_at_most_and_each_once_in_order():
    read_ahead = Recorded(BATCHES)
    seen = []
    for index, (customer_ids, payloads) in enumerate(read_ahead):
        with read_ahead.lock:
            assert len(read_ahead.read) <= index + 2  # this batch, and the next one at most
        assert customer_ids == BATCHES[index]
        assert set(payloads) == {f"evt_of_{customer_id}" for customer_id in customer_ids}
        seen.append(customer_ids)
    assert seen == BATCHES and read_ahead.read == BATCHES


def test_a_failed_read_leaves_its_batch_to_read_its_own_payloads(caplog):
    class Failing(ReadAhead):
        @staticmethod
        def _read(engine, customer_ids):
            raise ConnectionError("server closed the connection")

    with caplog.at_level(logging.WARNING, logger="backoffice.billing.replay"):
        assert list(Failing(object(), BATCHES[:2])) == [(BATCHES[0], {}), (BATCHES[1], {})]
    assert "reading payloads ahead failed" in caplog.text


# Run in a process of its own, as a shard is: freezing this test process's objects would put off its garbage.
COLLECTED_EVERY = """
import gc, weakref
from backoffice.billing.replay import CollectedEvery

class Cycle:
    def __init__(self):
        self.me = self

with CollectedEvery(None):
    assert gc.isenabled() and gc.get_freeze_count() == 0
with CollectedEvery(3) as collector:
    assert not gc.isenabled() and gc.get_freeze_count() > 0
    cycle = weakref.ref(Cycle())
    collector.batch_done()
    collector.batch_done()
    assert cycle() is not None, "collected before the third batch"
    collector.batch_done()
    assert cycle() is None, "not collected at the third batch"
assert gc.isenabled() and gc.get_freeze_count() == 0
print("ok")
"""


def test_a_shard_collects_its_cycles_every_few_batches_and_gives_the_collector_back():
    done = subprocess.run([sys.executable, "-c", COLLECTED_EVERY], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_without_an_engine_nothing_is_read_ahead():
    assert list(ReadAhead(None, BATCHES[:2])) == [(BATCHES[0], {}), (BATCHES[1], {})]


def test_a_real_read_ahead_of_unknown_customers_reads_nothing(app):
    with app.app_context():
        assert list(ReadAhead(db.engine, [["cus_nobody"]])) == [(["cus_nobody"], {})]


def post(harness, deliveries):
    for received in deliveries:
        response = harness.client.post("/webhooks/stripe", data=received.body, headers={
            "Stripe-Signature": received.headers["Stripe-Signature"], "Content-Type": "application/json"})
        assert response.status_code == 200
    runner = in_process_runner(harness.app)
    runner.forget()  # the test replays, with the payloads it read ahead


def test_events_archived_after_the_read_ahead_are_replayed_with_the_rest(harness, app):
    harness.tenant(T)
    SCENARIOS["full_refund"](harness.demo, T)
    harness.sandbox.webhooks.wait_idle()
    deliveries = list(harness.receiver.received)
    customer_id = next(r.event["data"]["object"]["id"] for r in deliveries if r.event["type"] == "customer.created")
    # Read ahead before the invoice payment (it names no customer), the refund and the last of the customer's
    # events were archived.
    late = [r for r in deliveries if r.event["type"].split(".")[0] in ("invoice_payment", "refund")] + [
        next(r for r in reversed(deliveries) if r.event["data"]["object"].get("customer") == customer_id)]
    post(harness, [r for r in deliveries if r not in late])
    with app.app_context():
        ahead = read_payloads(db.session.connection(), [customer_id])
        db.session.rollback()
    late_ids = {r.event["id"] for r in late}
    assert ahead and not late_ids & set(ahead)
    post(harness, late)

    with app.app_context():
        replayer = Replayer(db.session, ReplaySettings.from_config(app.config), gateway())
        [report] = replayer.replay_many([customer_id], ahead)
        db.session.commit()
        statuses = dict(db.session.execute(select(StripeEventState.stripe_event_id, StripeEventState.status)
                                           .where(StripeEventState.stripe_event_id.in_(late_ids))).all())
        unnamed = set(db.session.scalars(select(StripeEvent.id).where(StripeEvent.id.in_(late_ids),
                                                                      StripeEvent.stripe_customer_id.is_(None))))
        refunded = db.session.scalars(select(PaymentTransaction.refunded_amount)).all()
        # Read ahead now, the payloads include the invoice payment found through its invoice.
        assert late_ids <= set(read_payloads(db.session.connection(), [customer_id]))
        db.session.rollback()
    assert unnamed, "a late event must be one found only through its invoice"
    assert report.processed >= len(late_ids) and statuses == dict.fromkeys(late_ids, "processed")
    assert harness.ledger(T) == EXPECTED["full_refund"]
    assert any(amount > 0 for amount in refunded)
