"""Benchmark `flask billing prove`: N random lifecycles through the sandbox and the real webhook, reconciled
(events.list walk, replay_all) and checked against Stripe.

    python -m benchmarks.bench_prove [--lifecycles 1000] [--seed 1] [--months 12]

Runs in a scratch database on the server of DATABASE_URL (or the embedded PostgreSQL), migrated here and
dropped afterwards. Prints the wall time per phase, events/s over the whole run, and each check's verdict
(a failing check is reported, not fatal: this measures time).
"""
from __future__ import annotations

import argparse
import logging
import resource

from backoffice.demo.prove import prove
from backoffice.dev import create_app
from backoffice.extensions import db
from benchmarks.common import scratch_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifecycles", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--months", type=int, default=12)
    options = parser.parse_args()
    logging.getLogger("stripe").setLevel(logging.WARNING)

    with scratch_database() as uri:
        app = create_app({"LOG_LEVEL": "WARNING", "SQLALCHEMY_DATABASE_URI": uri, "PLATFORM_CURRENCY": "EUR"})
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            report = prove(app, options.lifecycles, options.seed, options.months, echo=lambda _line: None)
            db.session.remove()
            db.engine.dispose()
    print(f"prove: {options.lifecycles} lifecycles over {options.months} months, seed {options.seed}")
    for line in report.figures():
        print(line)
    for check in report.checks:
        print("\n".join(check.lines()))
    print(f"{report.generated} events in {report.seconds:.1f} s: {report.events_per_second:.0f} events/s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
