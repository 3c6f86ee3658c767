"""Reconciliation against the real services: a Celery worker on Redis doing the on-save work,
a Redis broker stopped in the middle of saves, and PostgreSQL under concurrent writers."""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import connection

from billing import services as billing_services
from billing import triggers
from billing.models import ReconciliationRequest
from billing.reconciliation import Scope, reconcile_now
from config.celery import app
from core.errors import Conflict
from tests.billing.conftest import grant_billing, live_items
from tests.factories import ContractFactory, ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tests.helpers import race
from tests.tally import tally
from tickets import services as ticket_services


def _reset_publishing() -> None:
    app._after_fork()  # drop pooled connections to the previous broker
    app.amqp.flush_routes()
    app.amqp.router = app.amqp.Router()


@contextmanager
def celery_against(broker_url: str | None = None, *, queue: str | None = None):
    """Send tasks for real (not eagerly), optionally to another broker and to a queue of our own,
    so another test run on the same Redis cannot take them."""
    conf = app.conf
    saved = (conf.task_always_eager, conf.broker_url, conf.task_routes)
    conf.task_always_eager = False
    if broker_url:
        conf.broker_url = broker_url
    if queue:
        conf.task_routes = {"billing.tasks.*": {"queue": queue}}
    _reset_publishing()
    try:
        yield
    finally:
        conf.task_always_eager, conf.broker_url, conf.task_routes = saved
        _reset_publishing()


def _wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def priced_ticket(db):
    project = ProjectFactory(key="MNX")
    owner = UserFactory(username="owner")
    grant(owner, project, "owner")
    ContractFactory(projects=[project], hourly_rate="1000.00")
    return owner, TicketFactory(project=project)


@contextmanager
def worker_process(queue: str):
    """A real `celery worker` process on the configured Redis, consuming only `queue`, using the
    test database (the test must commit its data: transaction=True)."""
    database = connection.settings_dict
    url = (f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/"
           f"{database['NAME']}")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "CELERY_TASK_ALWAYS_EAGER": "false"}
    process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
                                "--queues", queue, "--loglevel", "WARNING", "--without-heartbeat",
                                "--without-gossip", "--without-mingle"],
                               env=env, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        connection.close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_redis_reconciles_a_saved_time_entry(priced_ticket):
    owner, ticket = priced_ticket
    queue = f"test-billing-{uuid.uuid4()}"
    with celery_against(queue=queue), worker_process(queue):
        entry = ticket_services.time_entry_create(actor=owner, ticket=ticket, work_date=date(2026, 10, 5), minutes=90)
        assert _wait_for(lambda: f"ticket_time:{entry.pk}" in live_items(), timeout=60)
        assert _wait_for(lambda: not ReconciliationRequest.objects.exists(), timeout=10)
    item = live_items()[f"ticket_time:{entry.pk}"]
    assert (item.total, item.reconciliation_run.trigger, item.reconciliation_run.status) == (
        Decimal("1500.00"), "on_save", "succeeded")


@pytest.fixture
def private_redis():
    """A Redis server of this test's own, on a free port, that the test may stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    assert _wait_for(lambda: _pings(url), timeout=10)
    yield url, process
    process.kill()
    process.wait()


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.mark.redis
@pytest.mark.django_db
def test_saves_while_redis_is_stopped_still_reconcile(priced_ticket, private_redis, django_capture_on_commit_callbacks):
    owner, ticket = priced_ticket
    url, process = private_redis
    queue = f"test-billing-{uuid.uuid4()}"
    with celery_against(url, queue=queue):
        # Redis up, no worker yet: the task waits in the broker, the request in the outbox.
        with django_capture_on_commit_callbacks(execute=True):
            queued = ticket_services.time_entry_create(actor=owner, ticket=ticket, work_date=date(2026, 10, 5),
                                                       minutes=60)
        assert redis.Redis.from_url(url).llen(queue) == 1
        assert f"ticket_time:{queued.pk}" not in live_items()
        assert ReconciliationRequest.objects.count() == 1

        tally("fault")  # issue 9's fault list counts this one (tests/reliability/test_faults.py says so)
        process.kill()  # the broker goes away, and with it the queued task
        process.wait()
        with django_capture_on_commit_callbacks(execute=True):
            saved = ticket_services.time_entry_create(actor=owner, ticket=ticket, work_date=date(2026, 10, 6),
                                                      minutes=30)
    # Reconciled in-process at once; the client unit also picked up the entry whose task was lost.
    assert f"ticket_time:{saved.pk}" in live_items() and f"ticket_time:{queued.pk}" in live_items()
    # The lost task's request is still in the outbox; the periodic drain works it off.
    assert ReconciliationRequest.objects.count() == 1
    assert triggers.drain(older_than=timedelta(0)) == 1
    assert not ReconciliationRequest.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_contracts_created_at_once_only_one_wins():
    staff = grant_billing(UserFactory(username="bella"), "billing.manage")
    project = ProjectFactory(key="MNX")
    client = ContractFactory().client

    def create(n: int):
        return billing_services.contract_create(actor=staff, client=client, name=f"C{n}", projects=[project],
                                                valid_from=date(2026, 1 + n, 1), hourly_rate=Decimal("1"))

    outcomes = race(create, 8)
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(winners) == 1
    assert all(isinstance(o, Conflict) and o.code == "contract_overlap" for o in outcomes if o not in winners)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reconciliations_of_one_client_bill_each_source_once(priced_ticket):
    owner, ticket = priced_ticket
    entries = [TimeEntryFactory(ticket=ticket, user=owner, minutes=15 * (n + 1)) for n in range(30)]
    outcomes = race(lambda n: reconcile_now(Scope(), trigger="manual"), 6)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert sum(run.created for run in outcomes) == len(entries)
    assert set(live_items()) == {f"ticket_time:{entry.pk}" for entry in entries}
