"""Fixtures for billing: a project MNX with a ticket, a NOK client in Europe/Oslo (VAT 25 %),
an owner who logs time, and helpers to reconcile and to read the live items."""

from datetime import date

import pytest

from billing.choices import LIVE_STATUSES
from billing.models import BillingItem
from billing.reconciliation import Scope, reconcile_now
from tests.factories import (
    ClientFactory,
    ContractFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
)


@pytest.fixture
def ticket(mnx):
    return TicketFactory(project=mnx, title="Login fails")


@pytest.fixture
def customer(db):
    return ClientFactory(name="Fjord AS", currency="NOK")


@pytest.fixture
def clerk(db):
    """Billing staff with every billing permission (billing.admin includes the others)."""
    return grant_billing(UserFactory(username="bella"), "billing.admin")


@pytest.fixture
def contract(mnx, customer):
    return ContractFactory(client=customer, projects=[mnx], hourly_rate="1000.00")


@pytest.fixture
def entries(owner, ticket, contract):
    """Five of the owner's October entries, 1 to 5 hours at 1000 NOK (15000 NOK in all), reconciled."""
    made = [TimeEntryFactory(ticket=ticket, user=owner, minutes=60 * (n + 1), work_date=date(2026, 10, 5 + n))
            for n in range(5)]
    reconcile()
    return made


def reconcile(scope: Scope | None = None, **kwargs):
    return reconcile_now(scope or Scope(**kwargs), trigger="manual")


def live_items(**filters) -> dict[str, BillingItem]:
    return {item.source_key: item for item in BillingItem.objects.filter(status__in=LIVE_STATUSES, **filters)}


def grant_billing(user, *codes: str):
    """Give `user` global billing permissions, e.g. grant_billing(user, "billing.view")."""
    from django.contrib.auth.models import Permission

    for code in codes:
        app_label, codename = code.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user
