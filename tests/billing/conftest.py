import pytest

from tests.billing.harness import LedgerHarness


@pytest.fixture
def harness_factory(app, client, settings):
    made = []

    def make(**options) -> LedgerHarness:
        made.append(LedgerHarness(app, client, settings, **options))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


@pytest.fixture
def harness(harness_factory) -> LedgerHarness:
    return harness_factory()
