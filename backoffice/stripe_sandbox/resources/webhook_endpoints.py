"""(Being built.)"""
from backoffice.stripe_sandbox.api import Router

router = Router()
