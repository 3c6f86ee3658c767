"""Bulk reads and writes of billing items for reconciliation. On PostgreSQL new items go in with
COPY, the fastest way rows enter a table (no per-row statement, no per-value SQL literal), and
long key lists travel as one array parameter bound on the server; elsewhere through the ORM."""

import time

import psycopg
from django.db import connection
from django.utils import timezone

from .choices import LIVE_STATUSES, ItemStatus
from .models import BillingItem

BATCH_SIZE = 1000
KEY_LOOKUP_CHUNK = 2000
LIVE_STATUS_LITERALS = ", ".join(f"'{status}'" for status in LIVE_STATUSES)
# ItemSpec.copy_values() in this order, then what insert_items adds; the other columns keep
# their defaults (no invoice, no run, no original item).
VALUE_COLUMNS = (
    "source_key", "source_type", "source_id", "source_date", "client_id", "contract_id", "project_id", "ticket_id",
    "description", "qty", "unit_price", "total", "currency", "vat_rate", "period_month", "period_start",
    "period_end", "fingerprint",
)
COPY_COLUMNS = (*VALUE_COLUMNS, "supersedes_id", "status", "void_reason", "reconciliation_run_id", "created_at",
                "updated_at")


def insert_items(specs: list[tuple], *, reconciliation_run_id: int | None) -> int:
    """Insert a pending item for each (ItemSpec, id of the item it supersedes or None)."""
    if not specs:
        return 0
    if connection.vendor == "postgresql":
        return _copy(specs, reconciliation_run_id)
    BillingItem.objects.bulk_create(
        [BillingItem(**spec.item_values(), supersedes_id=supersedes, reconciliation_run_id=reconciliation_run_id)
         for spec, supersedes in specs], batch_size=BATCH_SIZE)
    return len(specs)


def _copy(specs: list[tuple], reconciliation_run_id: int | None) -> int:
    now = timezone.now()
    fixed = (ItemStatus.PENDING.value, "", reconciliation_run_id, now, now)
    statement = f"COPY {BillingItem._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    connection.ensure_connection()
    started = time.monotonic()
    with connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
        for spec, supersedes in specs:
            copy.write_row((*spec.copy_values(), supersedes, *fixed))
    if connection.queries_logged:  # COPY bypasses Django's cursor: show it where queries are counted
        connection.queries_log.append({"sql": f"{statement} -- {len(specs)} rows",
                                       "time": f"{time.monotonic() - started:.3f}"})
    return len(specs)


def lock_live_items_by_key(keys: list[str], source_types: list[str]) -> list[tuple]:
    """(pk, source_key, status, fingerprint) of the live items of these keys, locked, by pk."""
    if not keys:
        return []
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # Django's cursors inline parameters as SQL literals; a server-bound cursor sends the
        # keys as one binary array however many there are. The statuses are literals spelled as
        # the partial unique index's predicate (as a parameter the planner cannot prove the index
        # applies), and the statement is planned afresh each time (never prepared): it must stay
        # on that index while a run fills the table (see refresh_statistics).
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(f"SELECT id, source_key, status, fingerprint FROM {BillingItem._meta.db_table} "
                           f"WHERE source_key = ANY(%s) AND status IN ({LIVE_STATUS_LITERALS}) "
                           "AND source_type = ANY(%s) ORDER BY id FOR UPDATE", [keys, source_types], prepare=False)
            return cursor.fetchall()
    live = BillingItem.objects.select_for_update().filter(status__in=LIVE_STATUSES, source_type__in=source_types)
    rows = []
    for start in range(0, len(keys), KEY_LOOKUP_CHUNK):
        chunk = live.filter(source_key__in=keys[start:start + KEY_LOOKUP_CHUNK]).order_by("pk")
        rows.extend(chunk.values_list("pk", "source_key", "status", "fingerprint"))
    return sorted(rows)


class StatisticsKeeper:
    """Keeps PostgreSQL's statistics of the items table current while a long run fills it.
    Autovacuum analyzes a table a minute or more after it changed; a run that grows it from
    nothing to a million rows meanwhile is planned on "empty table" statistics, and the key
    lookups above turn into a scan of every row per unit (at scale 1: 92 of 144 s of a full run,
    docs/BENCHMARKS.md). ANALYZE samples a fixed number of rows, so refreshing each time the table
    has grown by half keeps the cost to a dozen cheap ANALYZEs per run."""

    MIN_GROWTH = 10_000

    def __init__(self):
        self.enabled = connection.vendor == "postgresql"
        self.known = self._estimated_rows() if self.enabled else 0
        self.grown = 0

    @staticmethod
    def _estimated_rows() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [BillingItem._meta.db_table])
            return max(int(cursor.fetchone()[0]), 0)

    def created(self, count: int) -> None:
        if not self.enabled:
            return
        self.grown += count
        if self.grown >= max(self.MIN_GROWTH, self.known // 2):
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {BillingItem._meta.db_table}")
            self.known, self.grown = self.known + self.grown, 0
