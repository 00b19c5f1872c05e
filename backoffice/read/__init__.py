"""The read layer: pages that show several domains at once (docs/architecture.md).

An account's page sets its people (accounts) beside its billing; the dashboard sums both; the jobs page
shows the drift sweep beside the Stripe budget. Those reads live here, above the domains, so that no domain
reads another one's tables to serve a page: `billing` may lean on `accounts.models`, never the other way.
Plain Python over a session: the web, the CLI and the demo import this layer, the domains never do, and
nothing here writes.

- `account_list`: the accounts list, its filters and sorts, one account's row;
- `account_overview`: one account's pane and page: people, last invoice, lifetime value, plan card, drift,
  recovery offer, its Stripe link;
- `dashboard`: the dashboard's cards;
- `sweep_status`: the jobs page: the drift sweep and the Stripe budget it draws on.
"""
