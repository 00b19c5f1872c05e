"""Import every model module, so that `db.metadata` describes the whole schema (migrations/env.py)."""

from backoffice.accounts import models as accounts_models
from backoffice.billing import models as billing_models
from backoffice.fx import models as fx_models
from backoffice.operators import models as operators_models

__all__ = ["accounts_models", "billing_models", "fx_models", "operators_models"]
