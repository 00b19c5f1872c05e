"""/accounts: one blueprint, its views in three modules: the list with its CSV and pane (`list_views`), the
account's page and its tabs (`detail_views`), the admin's actions and the Sync's progress (`action_views`)."""
from __future__ import annotations

# Importing the modules registers their routes on the blueprint.
from backoffice.web.accounts import action_views, detail_views, list_views  # noqa: F401
from backoffice.web.accounts.common import bp

__all__ = ["bp"]
