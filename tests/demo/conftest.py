"""The demo tests use the sandbox tests' real webhook receiver."""
from tests.stripe_sandbox.conftest import receiver_factory, webhook_receiver  # noqa: F401 (fixtures)
