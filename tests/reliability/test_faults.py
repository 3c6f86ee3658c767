"""Fault injection against real services: each test breaks a real S3 endpoint, database,
broker or worker process of its own (never the shared ones) and checks that the product
degrades cleanly: a machine-readable error instead of a 500, no orphan objects or rows, no
lost or duplicated billing work, recovery without a restart.

The Redis outage during saves is covered by
tests/billing/test_real_services.py::test_saves_while_redis_is_stopped_still_reconcile."""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import boto3
import psycopg
import pytest
from botocore.config import Config
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from rbac import services as rbac_services
from settlements import services as settlement_services
from settlements.models import SettlementAttachment
from tests.billing.test_real_services import private_redis  # noqa: F401  (fixture: a Redis the test may stop)
from tests.factories import ProjectFactory, UserFactory, grant
from tests.tally import tally

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
MB = 1024 * 1024
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def stop(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal a process we started (and its group, when it leads one) and reap it."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


# --- S3 -------------------------------------------------------------------------------------------

class PrivateS3:
    """A moto S3 server of the test's own, with a bucket; `kill()` takes the endpoint away."""

    def __init__(self):
        binary = shutil.which("moto_server", path=str(BIN)) or shutil.which("moto_server")
        if binary is None:
            pytest.fail("moto_server is not installed (requirements-dev.txt: moto[server])")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bucket = "faults"
        self.process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(self._answers, timeout=30), "moto_server did not start"
        self.client().create_bucket(Bucket=self.bucket)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def client(self):
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing",
                            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5))

    def keys(self) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def kill(self) -> None:
        tally("fault")
        stop(self.process)
        assert not self._answers()


@pytest.fixture
def private_s3(settings):
    """Point the default storage at a private moto server (never the shared endpoint, which
    other tests use): the test may kill it."""
    s3 = PrivateS3()
    options = {**settings.STORAGES["default"].get("OPTIONS", {})}
    if not settings.STORAGES["default"]["BACKEND"].endswith("S3Storage"):
        options = {"addressing_style": "path", "signature_version": "s3v4", "file_overwrite": False,
                   "default_acl": None, "max_memory_size": 8 * MB}
    options.update(bucket_name=s3.bucket, endpoint_url=s3.url, access_key="testing", secret_key="testing",
                   region_name="us-east-1", location="")
    if "transfer_config" not in options:
        from boto3.s3.transfer import TransferConfig

        options["transfer_config"] = TransferConfig(multipart_threshold=8 * MB, multipart_chunksize=8 * MB,
                                                    max_concurrency=2)
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage",
                                                          "OPTIONS": options}}
    try:
        yield s3
    finally:
        stop(s3.process)


@pytest.fixture
def owner(db):
    user = UserFactory(username="owner")
    grant(user, ProjectFactory(key="MNX"), "owner")
    return user


@pytest.fixture
def settlement(owner):
    return settlement_services.settlement_create(actor=owner, name="October", period_start=date(2026, 10, 1),
                                                 period_end=date(2026, 10, 31),
                                                 projects=list(owner_projects(owner)))


def owner_projects(user):
    from tickets.models import Project

    return Project.objects.filter(key="MNX")


def _upload(client, settlement, name: str, content: bytes):
    return client.post(f"/api/settlements/{settlement.pk}/attachments/",
                       {"file": SimpleUploadedFile(name, content)}, format="multipart")


def _on_s3_request(operation: str, handler) -> None:
    """Run `handler` just before the storage's S3 client sends `operation` (an S3 API name)."""
    default_storage.connection.meta.client.meta.events.register(f"before-send.s3.{operation}", handler)


@pytest.mark.s3
@pytest.mark.django_db
def test_upload_to_a_stopped_s3_endpoint_is_503_and_writes_no_row(private_s3, client_for, owner, settlement):
    private_s3.kill()
    started = time.monotonic()
    response = _upload(client_for(owner), settlement, "a.pdf", PDF)
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "storage_unavailable"
    assert time.monotonic() - started < 30
    assert not SettlementAttachment.objects.exists()


@pytest.mark.s3
@pytest.mark.django_db
def test_s3_endpoint_killed_in_the_middle_of_a_multipart_upload_is_503_and_writes_no_row(
        private_s3, client_for, owner, settlement):
    content = b"%PDF-1.4\n" + os.urandom(10 * MB)  # above the multipart threshold: several requests
    parts = []

    def kill_on_first_part(**_):
        parts.append(1)
        if len(parts) == 1:
            private_s3.kill()

    _on_s3_request("UploadPart", kill_on_first_part)
    response = _upload(client_for(owner), settlement, "big.pdf", content)
    assert parts, "the upload never reached S3's UploadPart"
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "storage_unavailable"
    assert not SettlementAttachment.objects.exists()


@pytest.mark.s3
@pytest.mark.django_db
def test_download_from_a_stopped_s3_endpoint_is_503_with_a_code(private_s3, client_for, owner, settlement):
    client = client_for(owner)
    attachment_id = _upload(client, settlement, "a.pdf", PDF).json()["id"]
    private_s3.kill()
    response = client.get(f"/api/settlements/{settlement.pk}/attachments/{attachment_id}/download/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "storage_unavailable"


@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.django_db(transaction=True)
def test_s3_endpoint_killed_in_the_middle_of_a_download_ends_the_stream_cleanly(
        private_s3, asgi_url, owner, settlement):
    """Over real HTTP: the headers (200, Content-Length) are out when S3 goes away, so the only
    honest signal left is a body cut short and a closed connection: no hang, and the server goes
    on serving."""
    size = 24 * MB
    attachment = settlement_services.attachment_upload(
        actor=owner, settlement=settlement, uploaded=SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + bytes(size - 9)))
    token = rbac_services.api_token_create(actor=owner, user=owner, name="faults")[1]
    url = urlparse(asgi_url)
    headers = {"Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    started = time.monotonic()
    conn.request("GET", f"/api/settlements/{settlement.pk}/attachments/{attachment.pk}/download/", headers=headers)
    response = conn.getresponse()
    try:
        assert response.status == 200 and int(response.getheader("Content-Length")) == size
        received = len(response.read(MB))
        private_s3.kill()
        try:
            while chunk := response.read(MB):
                received += len(chunk)
        except http.client.IncompleteRead as cut:
            received += len(cut.partial)
    finally:
        conn.close()
    assert received < size
    assert time.monotonic() - started < 30
    # The request's database connection went back (Django's ASGI handler skips response.close()
    # when a stream fails: a leak per failed download would exhaust the pool).
    assert wait_for(lambda: _other_sessions() == 0, timeout=10), "the failed download kept its connection"
    # The server survived it: the next request is answered normally.
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("GET", f"/api/settlements/{settlement.pk}/attachments/", headers=headers)
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def _other_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.fixture
def failing_attachment_insert(db):
    """A real database error at the INSERT of an attachment row, after the object is stored."""
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION fault_refuse_attachment() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'fault injected: attachment insert refused'; END $$;
            CREATE TRIGGER fault_refuse_attachment BEFORE INSERT ON settlements_settlementattachment
            FOR EACH ROW EXECUTE FUNCTION fault_refuse_attachment();
        """)
    tally("fault")
    yield
    # The test's transaction rolls the trigger back with everything else.


@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.django_db
def test_a_database_error_after_the_object_was_stored_removes_the_object(
        private_s3, client_for, owner, settlement, failing_attachment_insert):
    client = client_for(owner)
    client.raise_request_exception = False
    response = _upload(client, settlement, "a.pdf", PDF)
    assert response.status_code == 500
    assert not SettlementAttachment.objects.exists()
    assert private_s3.keys() == []


# --- Celery worker killed mid-recalculation --------------------------------------------------------

def _database_url() -> str:
    database = connection.settings_dict
    return (f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/"
            f"{database['NAME']}")


@contextmanager
def celery_worker(broker_url: str, **env):
    """A real `celery worker` (prefork, one child) on a private broker and the test database; the
    worker leads a process group of its own, which is killed on the way out whatever happened."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("CELERY_", "DJANGO_", "S3_"))}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings.local", DJANGO_DEBUG="false",
                       DATABASE_URL=_database_url(), DATABASE_POOL="false", REDIS_URL=broker_url, **env)
    process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork",
                                "--concurrency", "1", "--loglevel", "WARNING", "--without-heartbeat",
                                "--without-gossip", "--without-mingle"],
                               env=environment, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        stop(process)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _lock_waiters() -> set[int]:
    """Backends of the test database waiting for a row lock (the worker, on the held client). A
    killed worker's backend goes on waiting: it only notices its client is gone when it answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def two_clients(db):
    """Two clients with a contract and 20 billable time entries each (committed)."""
    from tests.factories import ContractFactory, TicketFactory, TimeEntryFactory

    entries, clients = [], []
    for key in ("AAA", "BBB"):
        project = ProjectFactory(key=key)
        contract = ContractFactory(projects=[project], hourly_rate="1000.00")
        ticket = TicketFactory(project=project)
        user = UserFactory(username=f"tech-{key.lower()}")
        entries += [TimeEntryFactory(ticket=ticket, user=user, work_date=date(2026, 10, 1 + n % 28),
                                     minutes=15 * (n + 1)) for n in range(20)]
        clients.append(contract.client)
    return clients, entries


@contextmanager
def holding_row_lock(table: str, pk: int):
    """Hold a row lock from a connection of our own, so a worker reaching that row waits there;
    the yielded function lets it go (leaving the block does too)."""
    with psycopg.connect(_database_url().replace("postgres://", "postgresql://"), autocommit=False) as other:
        other.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [pk])
        try:
            yield other.rollback
        finally:
            other.rollback()


def _recalculate_everything(owner) -> int:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(owner)
    response = client.post("/api/billing/recalculate/", {}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["run"]


def _assert_billed_once(entries, run_id: int) -> None:
    from billing.models import BillingItem, ReconciliationRun, ReconciliationUnit

    run = ReconciliationRun.objects.get(pk=run_id)
    assert (run.status, run.total, run.processed, run.created) == ("succeeded", 2, 2, len(entries))
    keys = list(BillingItem.objects.values_list("source_type", "source_id"))
    assert len(keys) == len(set(keys)) == len(entries)
    assert set(keys) == {("ticket_time", entry.pk) for entry in entries}
    assert ReconciliationUnit.objects.filter(run_id=run_id).count() == 2


@pytest.fixture
def billing_manager(db):
    from tests.billing.conftest import grant_billing

    return grant_billing(UserFactory(username="bella"), "billing.manage", "billing.view")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_killed_mid_recalculation_is_redelivered_and_bills_once(
        private_redis, two_clients, billing_manager):  # noqa: F811  (the imported fixture)
    """The worker's child is SIGKILLed while it reconciles the second client (the first one is
    done and committed): the task was acknowledged late and is rejected on worker loss, so the
    broker hands it to the next child, which finishes the run without billing anything twice."""
    from billing.models import ReconciliationRun, ReconciliationUnit
    from tests.billing.test_real_services import celery_against

    url, _ = private_redis
    (first, second), entries = two_clients
    with (celery_against(url), celery_worker(url) as worker,
          holding_row_lock("billing_client", second.pk) as release):
        run_id = _recalculate_everything(billing_manager)
        assert wait_for(lambda: ReconciliationUnit.objects.filter(run_id=run_id, client_id=first.pk).exists()
                        and len(_lock_waiters()) == 1, timeout=60), "the worker never reached the second client"
        [child], killed = _children(worker.pid), _lock_waiters()
        tally("fault")
        os.kill(child, signal.SIGKILL)
        # The task comes back (to the worker's next child) and waits at the held client again.
        assert wait_for(lambda: _lock_waiters() - killed, timeout=30), "the killed task was not redelivered"
        release()
        assert wait_for(lambda: ReconciliationRun.objects.get(pk=run_id).status != "running", timeout=60)
    _assert_billed_once(entries, run_id)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_whole_worker_killed_mid_recalculation_is_redelivered_to_the_next_worker_and_bills_once(
        private_redis, two_clients, billing_manager):  # noqa: F811  (the imported fixture)
    """The whole worker (parent and child) is SIGKILLed: nobody is left to requeue the task, but it
    was never acknowledged, so the broker hands it to the next worker once the visibility timeout
    (CELERY_VISIBILITY_TIMEOUT, short here) has passed."""
    from billing.models import ReconciliationRun, ReconciliationUnit
    from tests.billing.test_real_services import celery_against

    url, _ = private_redis
    (first, second), entries = two_clients
    with celery_against(url), holding_row_lock("billing_client", second.pk) as release:
        with celery_worker(url) as worker:
            run_id = _recalculate_everything(billing_manager)
            assert wait_for(lambda: ReconciliationUnit.objects.filter(run_id=run_id, client_id=first.pk).exists()
                            and len(_lock_waiters()) == 1, timeout=60), "the worker never reached the second client"
            tally("fault")
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=20)
        release()
        # The next worker looks for abandoned tasks at start, maybe too soon, then every second.
        with celery_worker(url, CELERY_VISIBILITY_TIMEOUT="1", CELERY_RESTORE_INTERVAL="1"):
            assert wait_for(lambda: ReconciliationRun.objects.get(pk=run_id).status != "running", timeout=60), (
                "the task of the killed worker was not redelivered")
    _assert_billed_once(entries, run_id)


# --- PostgreSQL restarted under a running app ------------------------------------------------------

class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb into a temporary directory, a free port), so
    it can be restarted without touching the shared server other tests and sessions use."""

    def __init__(self):
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        found = shutil.which("initdb")
        if not binaries and found is None:
            pytest.fail("PostgreSQL's initdb is not installed")
        self.bin = (binaries[-1] if binaries else Path(found)).parent
        self.directory = Path(tempfile.mkdtemp(prefix="fault-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.as_postgres = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            import pwd

            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        self.pg_ctl("start")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/app"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / program), *args], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def pg_ctl(self, command: str, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self._run("pg_ctl", command, "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"),
                  "-w", "-t", "30", *args)

    def restart(self) -> None:
        tally("fault")
        self.pg_ctl("restart", "-m", "fast")

    def destroy(self) -> None:
        with suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_postgres():
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.destroy()


SERVERS = {
    # The image's server: uvicorn on config.asgi, connections from the pool (settings' default).
    "uvicorn+pool": (["-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}",
                      "--log-level", "warning"], {"DATABASE_POOL": "true"}),
    # gunicorn on config.wsgi with persistent connections (DATABASE_POOL=false): one connection
    # per worker, kept across requests.
    "gunicorn+persistent": (["-m", "gunicorn", "config.wsgi:application", "--bind", "127.0.0.1:{port}",
                             "--workers", "1", "--log-level", "warning"],
                            {"DATABASE_POOL": "false", "DATABASE_CONN_MAX_AGE": "600"}),
}


@contextmanager
def app_server(kind: str, database_url: str):
    command, extra = SERVERS[kind]
    port = free_port()
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("CELERY_", "DJANGO_", "DATABASE_", "S3_", "REDIS_"))}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings.local", DJANGO_DEBUG="false",
                       DATABASE_URL=database_url, **extra)
    process = subprocess.Popen([sys.executable, *(part.format(port=port) for part in command)], env=environment,
                               cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        assert wait_for(lambda: _get(port, "/health/")[0] == 200 or process.poll() is not None, timeout=60)
        assert process.poll() is None, f"{kind} exited with {process.returncode}"
        yield port
    finally:
        stop(process)


def _get(port: int, path: str) -> tuple[int | None, bytes]:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()
    except OSError:
        return None, b""


@pytest.mark.postgres
@pytest.mark.parametrize("kind", SERVERS)
def test_the_app_recovers_from_a_postgresql_restart_without_a_restart_of_its_own(private_postgres, kind):
    """/health/ runs a query on the app's database connection (the one a load balancer probes).
    Connections opened before the restart are dead afterwards; the app must notice (health checks
    before reuse) instead of failing the next requests with 500s."""
    with app_server(kind, private_postgres.url) as port:
        for _ in range(4):  # fill the pool / open the persistent connection
            assert _get(port, "/health/")[0] == 200
        private_postgres.restart()
        answers = [_get(port, "/health/") for _ in range(4)]
        assert [status for status, _ in answers] == [200] * 4, [body[:300] for _, body in answers]


@pytest.mark.redis
@pytest.mark.django_db
def test_with_the_cache_redis_stopped_tokens_and_share_links_still_work(private_redis,  # noqa: F811
                                                                        settings, owner, settlement, api_client):
    """The brute-force counters and the share-link rate live in the cache (Redis in production).
    When it is gone, they stop counting (fail open) instead of turning every token request and
    customer page into a 500."""
    from django.test import Client

    url, process = private_redis
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    _, token = rbac_services.api_token_create(actor=owner, user=owner, name="script")
    settlement_services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    _, share = settlement_services.share_link_create(actor=owner, settlement=settlement)
    process.kill()
    process.wait()
    tally("fault")
    assert api_client.get("/api/users/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    bad = api_client.get("/api/users/me/", HTTP_AUTHORIZATION="Bearer sbt_wrong")
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_token"
    assert api_client.get(f"/api/public/settlements/{share}/").status_code == 200
    assert api_client.get("/api/public/settlements/unknown/").status_code == 404
    assert Client().get(f"/s/{share}/").status_code == 200
