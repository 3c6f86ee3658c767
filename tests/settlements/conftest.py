"""Fixtures for settlements: two projects, people with roles in them, a cross-project draft."""

from datetime import date

import pytest

from settlements import services
from tests.factories import ProjectFactory, TicketFactory, UserFactory, grant


@pytest.fixture
def acme(db):
    return ProjectFactory(key="ACME")


@pytest.fixture
def owner(mnx, acme):
    user = UserFactory(username="owner")
    grant(user, mnx, "owner")
    grant(user, acme, "owner")
    return user


@pytest.fixture
def settlement(owner, mnx, acme):
    return services.settlement_create(actor=owner, name="October", period_start=date(2026, 10, 1),
                                      period_end=date(2026, 10, 31), projects=[mnx, acme])


@pytest.fixture
def ticket(mnx):
    return TicketFactory(project=mnx, title="Login fails")


@pytest.fixture
def linked(settlement, ticket, owner):
    services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    return ticket


@pytest.fixture(autouse=True)
def storage_per_test(isolated_storage):
    """Every settlements test gets a storage location of its own (tests/conftest.py)."""


@pytest.fixture
def priced(mnx, acme):
    """A NOK client whose contract prices time in MNX and ACME at 1000/h. Call the returned
    function after creating rows with factories: it reconciles them into billing items."""
    from billing.reconciliation import Scope, reconcile_now
    from tests.factories import ContractFactory

    ContractFactory(projects=[mnx, acme], hourly_rate="1000.00")
    return lambda: reconcile_now(Scope(), trigger="manual")
