"""POST /webhooks/stripe: verify, archive, acknowledge. No session auth, no CSRF: Stripe signs instead."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from prometheus_client import Counter
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError

from backoffice.billing.intake.webhook import (
    Outcome,
    WebhookRejected,
    archive,
    read_envelope,
    verify_signature,
)
from backoffice.billing.operations import queue_replay
from backoffice.extensions import csrf, db
from backoffice.web.auth import public

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)

DELIVERIES = Counter("backoffice_stripe_webhook_deliveries_total", "Stripe webhook deliveries by outcome",
                     ["outcome"])


@bp.post("/webhooks/stripe")
@public
@csrf.exempt
def stripe_webhook():
    """Archive a signed Stripe event exactly once and answer 200 only after it is committed."""
    payload = request.get_data(cache=False)
    try:
        verify_signature(payload, request.headers.get("Stripe-Signature"),
                         current_app.config["STRIPE_WEBHOOK_SECRETS"])
        envelope = read_envelope(payload)
    except WebhookRejected as rejected:
        DELIVERIES.labels("rejected").inc()
        return jsonify(error=str(rejected)), 400
    try:
        outcome = archive(db.session, envelope, payload)
        db.session.commit()
    except (OperationalError, DBAPIError) as error:
        db.session.rollback()
        if isinstance(error, OperationalError) or error.connection_invalidated:
            # Not acknowledged, so Stripe retries: nothing acknowledged is ever lost.
            log.warning("webhook %s not archived, database unavailable: %s", envelope.id, type(error).__name__)
            DELIVERIES.labels("unavailable").inc()
            return jsonify(error="database unavailable; Stripe will retry"), 503
        raise
    DELIVERIES.labels(outcome.value).inc()
    if outcome is Outcome.STORED:
        try:
            queue_replay(envelope.customer_id)
        except RedisError as error:
            # Archived and acknowledged all the same: the pending sweeper queues it once Redis is back.
            log.warning("replay of %s not queued, Redis unavailable: %s", envelope.id, type(error).__name__)
    return jsonify(received=True, id=envelope.id, outcome=outcome.value)
