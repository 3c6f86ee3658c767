"""Fixtures of the security checks: a cross-project settlement with an owner, a linked ticket,
and a storage location of each test's own (a key prefix on S3, a folder locally)."""

from datetime import date

import pytest

from settlements import services
from tests.factories import TicketFactory


@pytest.fixture
def settlement(owner, mnx):
    return services.settlement_create(actor=owner, name="October", period_start=date(2026, 10, 1),
                                      period_end=date(2026, 10, 31), projects=[mnx])


@pytest.fixture
def ticket(mnx):
    return TicketFactory(project=mnx, title="Login fails")
