"""The reconciliation service (SPEC §4): turn the sources of a scope into billing items.

A scope (one source record, a contract, a client, a period, or everything) is planned into
client units: a client and the months to look at (None: all). Each unit runs in its own
transaction holding the client's row lock, so two reconciliations of one client never interleave;
it computes the item specs of every registered source, compares them with the live items, and
writes only the differences: new `pending` items, `superseded` for changed or vanished
`pending`/`void` items (the new item links the old one), and nothing for `reserved`/`invoiced`
items, whose sources are locked. Rerunning on unchanged sources writes no item.

Every reconciliation is a ReconciliationRun with its counts and ends with a BillingLog entry."""

import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import date

from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from tickets.models import Expense, TimeEntry

from . import bulk, periods
from .choices import (
    LIVE_STATUSES,
    LOCKED_STATUSES,
    ItemStatus,
    LogAction,
    RunStatus,
    RunTrigger,
    SourceType,
    UnmatchedReason,
)
from .models import (
    BillingItem,
    BillingLog,
    Client,
    Contract,
    ContractProject,
    ReconciliationRequest,
    ReconciliationRun,
    ReconciliationUnit,
    SalesLine,
    UnmatchedSource,
)
from .sources import ClientScope, ItemSpec, Unmatched, matches, registered_sources, source_types_of_record

logger = logging.getLogger(__name__)

RECORD_MODELS = {"time_entry": TimeEntry, "expense": Expense, "sales_line": SalesLine}


@dataclass(frozen=True)
class Scope:
    """What to reconcile. Empty: everything. `record_kind` with `record_id`, or with several
    `record_ids` (saves worked off together): those source records."""

    client_id: int | None = None
    contract_id: int | None = None
    period: date | None = None
    record_kind: str | None = None
    record_id: int | None = None
    record_ids: tuple[int, ...] | None = None

    def as_dict(self) -> dict:
        values = {name: value for name, value in asdict(self).items() if value is not None}
        if self.period:
            values["period"] = f"{self.period:%Y-%m}"
        if self.record_ids is not None:
            values["record_ids"] = list(self.record_ids)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "Scope":
        values = dict(values)
        if values.get("period"):
            values["period"] = periods.parse_period(values["period"])
        if values.get("record_ids") is not None:
            values["record_ids"] = tuple(values["record_ids"])
        return cls(**values)

    @property
    def months(self) -> frozenset[date] | None:
        return frozenset({self.period}) if self.period else None

    @property
    def records(self) -> tuple[int, ...]:
        return self.record_ids if self.record_ids is not None else (self.record_id,)

    def describe(self) -> str:
        if self.record_ids is not None and len(self.record_ids) > 3:
            return f"{len(self.record_ids)} records of kind {self.record_kind}"
        return ", ".join(f"{name} {value}" for name, value in self.as_dict().items()) or "everything"


Plan = dict[int, frozenset[date] | None]


# --- Planning: which clients and months a scope touches ---------------------------------------

def _merge(plan: Plan, client_id: int, months: frozenset[date] | None) -> None:
    if months is None or (client_id in plan and plan[client_id] is None):
        plan[client_id] = None
    else:
        plan[client_id] = plan.get(client_id, frozenset()) | months


def _contracts_by_project(project_ids) -> dict[int, list[Contract]]:
    by_project: dict[int, list[Contract]] = {}
    links = ContractProject.objects.filter(project_id__in=project_ids).select_related("contract")
    for link in links.order_by("contract__valid_from", "contract_id"):
        by_project.setdefault(link.project_id, []).append(link.contract)
    return by_project


def _plan_records(kind: str, record_ids: tuple[int, ...]) -> tuple[Plan, list[Unmatched]]:
    """The client units where these source records are now, and where their live items are
    (a record that moved, vanished or stopped being billable leaves an item to supersede), in a
    handful of queries however many records there are."""
    plan: Plan = {}
    unmatched: list[Unmatched] = []
    if kind == "sales_line":
        for client_id, day in SalesLine.objects.filter(pk__in=record_ids).values_list("client_id", "date"):
            _merge(plan, client_id, frozenset({periods.month_of(day)}))
    else:
        date_field = "work_date" if kind == "time_entry" else "date"
        source_type = SourceType.TICKET_TIME if kind == "time_entry" else SourceType.EXPENSE
        records = list(RECORD_MODELS[kind].objects.filter(pk__in=record_ids, billable=True)
                       .values_list("pk", "ticket__project_id", date_field))
        contracts = _contracts_by_project({project_id for _, project_id, _ in records})
        for pk, project_id, day in records:
            contract = next((c for c in contracts.get(project_id, ()) if c.covers(day)), None)
            if contract is None:
                unmatched.append(Unmatched(source_type, pk, UnmatchedReason.NO_CONTRACT, project_id=project_id,
                                           source_date=day))
            else:
                _merge(plan, contract.client_id, frozenset({periods.month_of(day)}))
    existing = (BillingItem.objects.filter(status__in=LIVE_STATUSES, source_id__in=record_ids,
                                           source_type__in=source_types_of_record(kind))
                .values_list("client_id", "period_month").distinct())
    for client_id, month in existing:
        _merge(plan, client_id, frozenset({month}))
    return plan, unmatched


def plan_units(scope: Scope) -> tuple[Plan, Callable[[], Iterable[Unmatched]]]:
    """The client units of a scope, and how to find its sources no contract covers: a callable,
    so that a run in worker processes can look for them while the units are being worked."""
    plan: Plan = {}
    if scope.record_kind:
        plan, unmatched = _plan_records(scope.record_kind, scope.records)
        return plan, lambda: unmatched
    if scope.contract_id:
        client_ids = set(Contract.objects.filter(pk=scope.contract_id).values_list("client_id", flat=True))
        client_ids |= set(BillingItem.objects.filter(contract_id=scope.contract_id, status__in=LIVE_STATUSES)
                          .values_list("client_id", flat=True).distinct())
        covered = _project_ids(Q(contract_id=scope.contract_id), Q(contract_id=scope.contract_id))
    elif scope.client_id:
        client_ids = set(Client.objects.filter(pk=scope.client_id).values_list("pk", flat=True))
        covered = _project_ids(Q(contract__client_id=scope.client_id), Q(client_id=scope.client_id))
    else:
        client_ids = set(Client.objects.values_list("pk", flat=True))
        covered = None
    for client_id in sorted(client_ids):
        _merge(plan, client_id, scope.months)
    return plan, lambda: unmatched_without_contract(scope.period, project_ids=covered)


def _project_ids(links: Q, items: Q) -> set[int]:
    """Projects a contract or client covers now, or had items for: where sources may have just
    lost their contract."""
    project_ids = set(ContractProject.objects.filter(links).values_list("project_id", flat=True))
    return project_ids | set(BillingItem.objects.filter(items, status__in=LIVE_STATUSES, project_id__isnull=False)
                             .values_list("project_id", flat=True).distinct())


def _without_contract(model, date_field: str, period: date | None, project_ids=None):
    covering = (ContractProject.objects.filter(project_id=OuterRef("ticket__project_id"),
                                               contract__valid_from__lte=OuterRef(date_field))
                .filter(Q(contract__valid_to__isnull=True) | Q(contract__valid_to__gte=OuterRef(date_field))))
    records = model.objects.filter(billable=True).filter(~Exists(covering))
    if period:
        records = records.filter(**{f"{date_field}__gte": period, f"{date_field}__lte": periods.last_day(period)})
    if project_ids is not None:
        records = records.filter(ticket__project_id__in=project_ids)
    return records.values_list("pk", "ticket__project_id", date_field)


def unmatched_without_contract(period: date | None = None, project_ids=None):
    """Billable time entries and expenses that no contract covers on their date (SPEC §4 rule 1),
    optionally only in some projects."""
    for source_type, model, date_field in ((SourceType.TICKET_TIME, TimeEntry, "work_date"),
                                           (SourceType.EXPENSE, Expense, "date")):
        records = _without_contract(model, date_field, period, project_ids)
        for pk, project_id, day in records.iterator(chunk_size=5000):
            yield Unmatched(source_type, pk, UnmatchedReason.NO_CONTRACT, project_id=project_id, source_date=day)


# --- One client unit ----------------------------------------------------------------------------

@dataclass
class UnitResult:
    created: int = 0
    superseded: int = 0
    unchanged: int = 0
    skipped_locked: int = 0
    processed: int = 0
    unmatched: int = 0


def _compute_specs(scope: ClientScope) -> dict[str, ItemSpec]:
    specs: dict[str, ItemSpec] = {}
    for source in registered_sources().values():
        for spec in source.specs(scope):
            specs[spec.key] = spec
    return specs


@dataclass(frozen=True)
class LiveItem:
    """What the diff needs of a stored live item; the whole row only when it has no fingerprint."""

    pk: int
    key: str
    status: str
    fingerprint: int | None

    FIELDS = ("pk", "source_key", "status", "fingerprint")


def _lock_live_items(client: Client, months, keys) -> dict[str, LiveItem]:
    """The live items of the unit, plus live items elsewhere that stand for one of its keys
    (a source moved to another month or client keeps its lineage), locked."""
    source_types = list(registered_sources())
    in_unit = BillingItem.objects.select_for_update(of=("self",)).filter(
        status__in=LIVE_STATUSES, source_type__in=source_types, client=client).order_by("pk")
    if months is not None:
        in_unit = in_unit.filter(period_month__in=months)
    items = {row[1]: LiveItem(*row) for row in in_unit.values_list(*LiveItem.FIELDS)}
    missing = [key for key in keys if key not in items]
    items.update((row[1], LiveItem(*row)) for row in bulk.lock_live_items_by_key(missing, source_types))
    return items


def _unchanged(item: LiveItem, spec: ItemSpec, legacy: dict[int, BillingItem]) -> bool:
    if item.fingerprint is not None:
        return item.fingerprint == spec.fingerprint
    return matches(legacy[item.pk], spec.item_values())


def _legacy_items(items: dict[str, LiveItem]) -> dict[int, BillingItem]:
    """Items written before fingerprints: loaded whole, to be compared field by field."""
    ids = [item.pk for item in items.values() if item.fingerprint is None]
    return BillingItem.objects.in_bulk(ids) if ids else {}


def _apply(run: ReconciliationRun, specs: dict[str, ItemSpec], items: dict[str, LiveItem]) -> UnitResult:
    """Diff the specs against the live items by fingerprint, then write the difference in bulk:
    one UPDATE for the superseded items, one bulk insert (COPY on PostgreSQL) for the new ones."""
    result = UnitResult(processed=len(specs))
    legacy = _legacy_items(items)
    replaced, new_items = [], []
    for key, spec in specs.items():
        item = items.pop(key, None)
        if item is None:
            new_items.append((spec, None))
        elif _unchanged(item, spec, legacy):
            result.unchanged += 1
        elif item.status in LOCKED_STATUSES:
            result.skipped_locked += 1
        else:
            replaced.append(item.pk)
            new_items.append((spec, item.pk))
    for item in items.values():  # live items whose source vanished or left the contract
        if item.status in LOCKED_STATUSES:
            result.skipped_locked += 1
        else:
            replaced.append(item.pk)
    if replaced:
        # Superseded first: the new item takes over the source key, which allows one live item.
        BillingItem.objects.filter(pk__in=replaced).update(status=ItemStatus.SUPERSEDED, updated_at=timezone.now())
    bulk.insert_items(new_items, reconciliation_run_id=run.pk)
    result.created, result.superseded = len(new_items), len(replaced)
    return result


def _record_unmatched(run: ReconciliationRun, unmatched: list[Unmatched]) -> None:
    UnmatchedSource.objects.bulk_create(
        [UnmatchedSource(run=run, source_type=u.source_type, source_id=u.source_id, reason=u.reason,
                         project_id=u.project_id, client_id=u.client_id, source_date=u.source_date, detail=u.detail)
         for u in unmatched], batch_size=1000)


def _add_counts(run: ReconciliationRun, result: UnitResult) -> None:
    ReconciliationRun.objects.filter(pk=run.pk).update(
        created=F("created") + result.created, superseded=F("superseded") + result.superseded,
        unchanged=F("unchanged") + result.unchanged, skipped_locked=F("skipped_locked") + result.skipped_locked,
        unmatched=F("unmatched") + result.unmatched, items_processed=F("items_processed") + result.processed,
        processed=F("processed") + 1,
    )


def reconcile_client(run: ReconciliationRun, client_id: int, months: frozenset[date] | None) -> UnitResult:
    with transaction.atomic():
        client = Client.objects.select_for_update().filter(pk=client_id).first()
        if client is None:  # nothing locked: a redelivered unit may race this one
            first_time = ReconciliationUnit.objects.get_or_create(run_id=run.pk, client_id=client_id)[1]
        else:  # the client's row lock orders the units of one client: no savepoint needed
            first_time = not ReconciliationUnit.objects.filter(run_id=run.pk, client_id=client_id).exists()
            if first_time:
                ReconciliationUnit.objects.create(run_id=run.pk, client_id=client_id)
        if client is None:
            result = UnitResult()
        else:
            scope = ClientScope.load(client, months)
            specs = _compute_specs(scope)
            result = _apply(run, specs, _lock_live_items(client, months, specs))
            if first_time:
                _record_unmatched(run, scope.unmatched)
            result.unmatched = len(scope.unmatched)
        if first_time:
            _add_counts(run, result)
    return result


# --- Runs -----------------------------------------------------------------------------------------

def run_create(*, scope: Scope, trigger: str, actor=None, task_id: str | None = None) -> ReconciliationRun:
    return ReconciliationRun.objects.create(scope=scope.as_dict(), trigger=trigger, actor=actor, task_id=task_id)


def _claim(run: ReconciliationRun) -> bool:
    return bool(ReconciliationRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()))


def record_unmatched(run_id: int, find_unmatched: Callable[[], Iterable[Unmatched]]) -> None:
    unmatched = list(find_unmatched())
    with transaction.atomic():
        _record_unmatched(ReconciliationRun(pk=run_id), unmatched)
        ReconciliationRun.objects.filter(pk=run_id).update(unmatched=F("unmatched") + len(unmatched))


def run_start(run: ReconciliationRun) -> Plan | None:
    """Claim a queued run, plan it, and record the sources no contract covers. None if another
    process has claimed it already (a redelivered task)."""
    if not _claim(run):
        return None
    plan, find_unmatched = plan_units(Scope.from_dict(run.scope))
    ReconciliationRun.objects.filter(pk=run.pk).update(total=len(plan))
    record_unmatched(run.pk, find_unmatched)
    run.refresh_from_db()
    if not plan:
        run_finish_if_done(run.pk)
    return plan


def run_finish_if_done(run_id: int) -> bool:
    """Called after every unit; the call that sees the last unit done closes the run and logs it."""
    finished = ReconciliationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, processed__gte=F("total")).update(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    if finished:
        _log_run(ReconciliationRun.objects.get(pk=run_id))
    return bool(finished)


def run_fail(run_id: int, error: BaseException) -> None:
    failed = ReconciliationRun.objects.filter(pk=run_id).exclude(status=RunStatus.SUCCEEDED).update(
        status=RunStatus.FAILED, finished_at=timezone.now(), error=f"{type(error).__name__}: {error}"[:2000])
    if failed:
        _log_run(ReconciliationRun.objects.get(pk=run_id))


def summary_of(run: ReconciliationRun) -> str:
    text = (f"{run.get_status_display()}: created {run.created}, superseded {run.superseded}, unchanged "
            f"{run.unchanged}, unmatched {run.unmatched}, skipped (locked) {run.skipped_locked}")
    return text + (f"; error: {run.error}" if run.error else "")


def _log_run(run: ReconciliationRun) -> None:
    BillingLog.objects.create(action=LogAction.RECONCILE, actor=run.actor, scope=run.scope,
                              item_count=run.created + run.superseded, duration_ms=run.duration_ms or 0,
                              summary=summary_of(run)[:500], reconciliation_run=run)


class ReconciliationFailed(Exception):
    """Some client units of a run failed; the others were applied."""


# A deadlock between two units of parallel workers, or two of them racing for the key of a source
# that moved between their clients: a retry reads the settled state (the Celery tasks do the same).
RETRYABLE = (OperationalError, IntegrityError)
UNIT_ATTEMPTS = 4


def _reconcile_unit(run_id: int, client_id: int, months) -> tuple[str | None, int]:
    """One client unit: (what went wrong or None, items created). Runs in this process or a
    worker process."""
    for attempt in range(1, UNIT_ATTEMPTS + 1):
        try:
            return None, reconcile_client(ReconciliationRun(pk=run_id), client_id, months).created
        except RETRYABLE as error:
            if attempt == UNIT_ATTEMPTS:
                return _unit_failed(run_id, client_id, error)
            time.sleep(0.1 * 2 ** attempt)
        except Exception as error:
            return _unit_failed(run_id, client_id, error)
    raise AssertionError("unreachable")


def _unit_failed(run_id: int, client_id: int, error: BaseException) -> tuple[str, int]:
    logger.exception("Reconciliation run %s: client %s failed", run_id, client_id, exc_info=error)
    return f"client {client_id}: {type(error).__name__}: {error}", 0


def _release_connections_before_fork() -> None:
    """Forked processes must not share the parent's database sockets: close them (and the pool's)
    so every process opens its own."""
    for wrapper in connections.all(initialized_only=True):
        wrapper.close()
        if hasattr(wrapper, "close_pool"):
            wrapper.close_pool()


def _collect(outcomes, total: int, progress, statistics: "bulk.StatisticsKeeper") -> list[str]:
    """Failures of the units' (failure, created) outcomes, keeping the item statistics current
    and the progress reported as each unit finishes."""
    failures = []
    for done, (failure, created) in enumerate(outcomes, start=1):
        if failure:
            failures.append(failure)
        statistics.created(created)
        if progress:
            progress(done, total)
    return failures


def _units_in_processes(run_id: int, units: list, workers: int, progress, find_unmatched) -> list[str]:
    """The units in forked processes; meanwhile this process looks for the unmatched sources,
    which would otherwise hold the workers back for a whole scan of the time entries."""
    statistics = bulk.StatisticsKeeper()
    _release_connections_before_fork()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_reconcile_unit, run_id, client_id, months) for client_id, months in units]
        record_unmatched(run_id, find_unmatched)
        return _collect((future.result() for future in as_completed(futures)), len(units), progress, statistics)


def _units_here(run_id: int, units: list, progress) -> list[str]:
    outcomes = (_reconcile_unit(run_id, client_id, months) for client_id, months in units)
    return _collect(outcomes, len(units), progress, bulk.StatisticsKeeper())


def reconcile_run(run: ReconciliationRun, *, progress=None, workers: int = 1) -> ReconciliationRun:
    """Work a run off unit after unit, in this process or (`workers` > 1, on PostgreSQL) in that
    many forked processes; a failing client does not stop the others, but fails the run
    (ReconciliationFailed). `progress(done, total)` is called after each client (the management
    command draws its bar with it). Units lock their client's row, so processes never collide."""
    try:
        if not _claim(run):
            run.refresh_from_db()
            return run  # another process has it
        plan, find_unmatched = plan_units(Scope.from_dict(run.scope))
        ReconciliationRun.objects.filter(pk=run.pk).update(total=len(plan))
        units = sorted(plan.items(), key=lambda unit: unit[0])
        if workers > 1 and len(units) > 1 and connection.vendor == "postgresql":
            failures = _units_in_processes(run.pk, units, min(workers, len(units)), progress, find_unmatched)
        else:
            record_unmatched(run.pk, find_unmatched)
            failures = _units_here(run.pk, units, progress)
    except Exception as error:
        run_fail(run.pk, error)
        raise
    if failures:
        error = ReconciliationFailed("; ".join(failures))
        run_fail(run.pk, error)
        raise error
    run_finish_if_done(run.pk)
    run.refresh_from_db()
    return run


def reconcile_now(scope: Scope, *, trigger: str, actor=None, progress=None, workers: int = 1) -> ReconciliationRun:
    return reconcile_run(run_create(scope=scope, trigger=trigger, actor=actor), progress=progress, workers=workers)


# --- Saves a draft build must not overtake ---------------------------------------------------------

def client_ids_of_records(kind: str, record_ids) -> list[int]:
    """The clients whose items these source records have or would get, in lock order."""
    return sorted(_plan_records(kind, tuple(record_ids))[0])


def reconcile_requested(client_ids, *, actor=None) -> list[ReconciliationRun]:
    """Reconcile, inside the caller's transaction (which holds these clients' row locks), the
    source records whose on-save reconciliation is still waiting (queued behind those locks, or
    not yet run at all), as far as they concern these clients. A draft built or refreshed right
    after a save then bills the saved values, never an item computed from the values before, which
    the reservation would lock in. Other clients are left to the waiting reconciliation: locking
    them here could deadlock with another build. The requests stay; reconciling again is a no-op."""
    held = set(client_ids)
    records: dict[str, set[int]] = {}
    # Requests that failed too often are left for a person: one poisoned record must not make
    # every build of its client fail.
    waiting = ReconciliationRequest.objects.filter(attempts__lt=ReconciliationRequest.MAX_ATTEMPTS)
    for values in waiting.values_list("scope", flat=True):
        scope = Scope.from_dict(values)
        if scope.record_kind:
            records.setdefault(scope.record_kind, set()).update(scope.records)
    runs = []
    for kind, ids in sorted(records.items()):
        record_ids = tuple(sorted(ids))
        units = sorted((client_id, months) for client_id, months in _plan_records(kind, record_ids)[0].items()
                       if client_id in held)
        if not units:
            continue
        run = run_create(scope=Scope(record_kind=kind, record_ids=record_ids), trigger=RunTrigger.ON_SAVE,
                         actor=actor)
        _claim(run)
        ReconciliationRun.objects.filter(pk=run.pk).update(total=len(units))
        for client_id, months in units:
            reconcile_client(run, client_id, months)
        run_finish_if_done(run.pk)
        runs.append(run)
    return runs
