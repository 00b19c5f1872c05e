"""The only reader of HX-* headers: page-or-partial rendering, the Vary hook, stopping a poll."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, make_response, render_template, request

# htmx's documented status code that tells a polling element to stop.
STOP_POLLING = 286


def is_partial_request() -> bool:
    """Tell whether the request wants a fragment: an htmx request that is neither boosted nor a history restore."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def is_htmx_request() -> bool:
    """Tell whether htmx sent the request, whatever kind (partial, boosted, history restore)."""
    return request.headers.get("HX-Request") == "true"


def swap_target() -> str | None:
    """The id of the element an htmx request swaps into (HX-Target), if any."""
    return request.headers.get("HX-Target") if is_htmx_request() else None


def current_page_url() -> str | None:
    """The address the browser showed when htmx made this request (HX-Current-URL), unchecked."""
    return request.headers.get("HX-Current-URL")


def send_browser_to(response: Response, url: str) -> Response:
    """Make htmx load `url` as a whole page, even from an error response (it reads HX-Redirect before the status)."""
    response.headers["HX-Redirect"] = url
    return response


def render_page_or_partial(page_template: str, partial_template: str, /, **context: Any) -> str:
    """Render the whole page, or only its partial for an htmx request."""
    return render_template(partial_template if is_partial_request() else page_template, **context)


def render_list(page_template: str, partial_template: str, canonical_url: str, /, **context: Any) -> Response:
    """Render a list page or its partial; an htmx swap then shows the list's canonical URL in the address bar
    (a form submits empty fields and defaults that the URL convention leaves out)."""
    response = make_response(render_page_or_partial(page_template, partial_template, **context))
    if is_partial_request():
        response.headers["HX-Push-Url"] = canonical_url
    return response


def stop_polling(body: str = "") -> Response:
    """Answer a polling element so that htmx stops polling it."""
    return make_response(body, STOP_POLLING)


def add_vary_header(response: Response) -> Response:
    """Let caches tell a page from its partial."""
    response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    """Send Vary: HX-Request on every response."""
    app.after_request(add_vary_header)
