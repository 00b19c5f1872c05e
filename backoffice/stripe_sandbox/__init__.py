"""A local Stripe: a stateful server speaking the part of Stripe's v1 REST API that Backoffice uses.

The official `stripe` SDK talks to it unchanged (`StripeClient(key, base_addresses={"api": url})`).
It is Stripe, not Backoffice: nothing here imports the rest of the package.
"""
from backoffice.stripe_sandbox.sandbox import Sandbox, SandboxSettings

__all__ = ["Sandbox", "SandboxSettings"]
