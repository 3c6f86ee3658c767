"""Fixtures of the security checks: a cross-project settlement with an owner, a linked ticket,
and a storage location of each test's own (a key prefix on S3, a folder locally)."""

import uuid
from datetime import date

import pytest

from settlements import services
from tests.factories import ProjectFactory, TicketFactory, UserFactory, grant


@pytest.fixture
def isolated_storage(request, settings, tmp_path):
    # Shallow copies: the options hold a boto3 TransferConfig, which does not survive deepcopy.
    options = dict(settings.STORAGES["default"].get("OPTIONS", {}))
    storages = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": options}}
    if storages["default"]["BACKEND"].endswith("S3Storage"):
        request.getfixturevalue("s3_bucket")
        options["location"] = f"test-{uuid.uuid4().hex}"
    else:
        options["location"] = str(tmp_path / "media")
    settings.STORAGES = storages


@pytest.fixture
def mnx(db):
    return ProjectFactory(key="MNX")


@pytest.fixture
def owner(mnx):
    user = UserFactory(username="owner")
    grant(user, mnx, "owner")
    return user


@pytest.fixture
def settlement(owner, mnx):
    return services.settlement_create(actor=owner, name="October", period_start=date(2026, 10, 1),
                                      period_end=date(2026, 10, 31), projects=[mnx])


@pytest.fixture
def ticket(mnx):
    return TicketFactory(project=mnx, title="Login fails")
