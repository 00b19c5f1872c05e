"""The web process's access log: gunicorn's, less the 200s of Stripe's deliveries (the Procfile's `--logger-class`).

In a burst, a line per accepted delivery is written in the request's thread before the next delivery is read:
0–16 % of the intake's throughput in the peer benchmark (benchmarks/README.md). Those deliveries are counted by
outcome in Prometheus (`backoffice_stripe_webhook_deliveries_total`) and each stored event is in the archive, so
the lines add nothing. A refused or failed delivery (4xx, 5xx) is still logged, as is every other request.
"""
from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from backoffice.web.webhooks.intake import PATH


class AccessLog(Logger):
    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if environ.get("PATH_INFO") == PATH and resp.status_code == 200:
            return
        super().access(resp, req, environ, request_time)
