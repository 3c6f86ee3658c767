"""Shared fixtures, and the rule for tests that need a real service.

A test marked `postgres`, `redis` or `s3` is skipped, with the reason, when that service is not
configured (DATABASE_URL / REDIS_URL / S3_ENDPOINT_URL). With REQUIRE_SERVICES=1 (set by .ci/run)
such a skip becomes a failure: CI must run everything.
"""

import os
import socket
import threading
import time

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory, grant

SERVICE_HINTS = {
    "postgres": "needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/settlements",
    "redis": "needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0",
    "s3": "needs an S3 endpoint: set S3_ENDPOINT_URL (e.g. moto_server -p 5055) and S3_BUCKET",
}


def _redis_reachable() -> bool:
    if not settings.REDIS_URL:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def service_available(name: str) -> bool:
    if name == "postgres":
        return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    if name == "redis":
        return _redis_reachable()
    if name == "s3":
        return bool(settings.S3_ENDPOINT_URL and settings.S3_BUCKET)
    raise ValueError(name)


_availability: dict[str, bool] = {}


def pytest_runtest_setup(item):
    for name in SERVICE_HINTS:
        if item.get_closest_marker(name) is None:
            continue
        if name not in _availability:
            _availability[name] = service_available(name)
        if _availability[name]:
            continue
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES=1 but this test {SERVICE_HINTS[name]}", pytrace=False)
        pytest.skip(SERVICE_HINTS[name])


def pytest_report_header(config):
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return (f"database: {engine}; redis: {'configured' if settings.REDIS_URL else 'not configured'}; "
            f"s3: {settings.S3_ENDPOINT_URL or 'not configured (local files)'}")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def client_for():
    """client_for(user) → an APIClient authenticated as that user (None → anonymous)."""

    def make(user):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def mnx(db):
    return ProjectFactory(key="MNX")


@pytest.fixture
def owner(mnx):
    """An Owner of MNX (the settlements tests make theirs an Owner of ACME too)."""
    user = UserFactory(username="owner")
    grant(user, mnx, "owner")
    return user


@pytest.fixture
def isolated_storage(request, settings, tmp_path):
    """A storage location of the test's own (a key prefix on S3, a folder locally), so objects
    left by one test never show up in another's assertions. Autouse in tests/settlements."""
    import uuid

    # Shallow copies: the options hold a boto3 TransferConfig, which does not survive deepcopy.
    options = dict(settings.STORAGES["default"].get("OPTIONS", {}))
    storages = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": options}}
    if storages["default"]["BACKEND"].endswith("S3Storage"):
        request.getfixturevalue("s3_bucket")
        options["location"] = f"test-{uuid.uuid4().hex}"
    else:
        options["location"] = str(tmp_path / "media")
    settings.STORAGES = storages


@pytest.fixture(scope="session")
def s3_bucket():
    """The configured bucket on the S3 endpoint (moto's server in CI, MinIO elsewhere), created if missing."""
    if not service_available("s3"):
        pytest.skip(SERVICE_HINTS["s3"])
    import boto3
    from botocore.exceptions import ClientError

    options = settings.STORAGES["default"]["OPTIONS"]
    client = boto3.client("s3", endpoint_url=options["endpoint_url"], region_name=options["region_name"],
                          aws_access_key_id=options["access_key"] or "testing",
                          aws_secret_access_key=options["secret_key"] or "testing")
    try:
        client.head_bucket(Bucket=options["bucket_name"])
    except ClientError:
        client.create_bucket(Bucket=options["bucket_name"])
    return options["bucket_name"]


def pytest_terminal_summary(terminalreporter):
    """The reliability summary the acceptance of issue 9 asks for (see tests/tally.py)."""
    from tests.tally import summary_lines

    failed = len(terminalreporter.stats.get("failed", [])) + len(terminalreporter.stats.get("error", []))
    terminalreporter.section("reliability summary")
    for line in summary_lines(failed):
        terminalreporter.write_line(line)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def asgi_url():
    """config.asgi.application (Django + MCP) served by uvicorn in a thread on a free port. One per
    session: the MCP app's lifespan (its session manager) may start only once per process."""
    import uvicorn

    from config.asgi import application

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
