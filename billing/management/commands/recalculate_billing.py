"""`manage.py recalculate_billing`: reconcile the billing items of a scope (a client, a contract,
a month, or everything) with their sources. By default in this process, with a progress bar on
stderr and the run's counts at the end; with --async the run is queued for the Celery workers."""

import uuid

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from kombu.exceptions import OperationalError as BrokerUnavailable

from billing import periods, services
from billing.choices import RunStatus, RunTrigger
from billing.models import BillingSettings, ReconciliationRun
from billing.reconciliation import Scope, reconcile_run, run_create, summary_of
from billing.tasks import reconcile_billing_task
from billing.triggers import PUBLISH_RETRY_POLICY
from core.errors import ServiceError

BAR_WIDTH = 20


def run_page(run: ReconciliationRun) -> str:
    return reverse("admin:billing_reconciliationrun_change", args=[run.pk])


class ProgressBar:
    """`progress(done, total)` for the reconciliation: "[#####-----] 3/6 clients" on stderr,
    redrawn in place on a terminal, one line per step otherwise (logs, pipes)."""

    def __init__(self, stream):
        self.stream = stream
        self.in_place = stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        line = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{total} clients"
        if self.in_place:
            self.stream.write("\r" + line, style_func=str, ending="\n" if done >= total else "")
        else:
            self.stream.write(line, style_func=str)


class Command(BaseCommand):
    help = ("Recalculate billing: reconcile the billing items of a client, a contract and/or a month (default: "
            "everything) with their sources, as 'Recalculate billing' in the admin does.")

    def add_arguments(self, parser):
        parser.add_argument("--client", type=int, metavar="ID", help="Only this client (its id).")
        parser.add_argument("--contract", type=int, metavar="ID",
                            help="Only the client(s) of this contract (its id).")
        parser.add_argument("--period", metavar="YYYY-MM", help="Only this month, e.g. 2026-10.")
        parser.add_argument("--workers", type=int, default=1, metavar="N",
                            help="Reconcile the clients in N processes at once (PostgreSQL; default 1; not with "
                                 "--async, where the Celery workers share the clients). Each process opens its "
                                 "own database connections.")
        parser.add_argument("--async", dest="run_async", action="store_true",
                            help="Queue the run for the Celery workers and print its task id instead of running "
                                 "it here.")

    def handle(self, *args, client=None, contract=None, period=None, run_async=False, workers=1, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        scope = self.scope(client, contract, period)
        try:
            if run_async:
                run = self.enqueue(scope)
            else:
                run = services.recalculate_now(actor=None, scope=scope, progress=ProgressBar(self.stderr),
                                               workers=workers)
        except ServiceError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        except CommandError:
            raise
        except Exception as exc:  # the run is recorded as failed; say so instead of a bare traceback
            raise CommandError(f"Recalculation failed: {type(exc).__name__}: {exc}") from exc
        if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            self.stdout.write(f"Status: {run.get_status_display()}; follow it at {run_page(run)}")
            return
        self.report(run)
        if run.status == RunStatus.FAILED:
            raise CommandError(f"Reconciliation run {run.pk} failed.")

    def scope(self, client_id, contract_id, period) -> Scope:
        month = None
        if period is not None:
            try:
                month = periods.parse_period(period)
            except ValueError as exc:
                raise CommandError(f"--period: {exc}") from None
        try:
            scope = services.resolve_scope(client_id=client_id, contract_id=contract_id, period=month)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        return scope

    def enqueue(self, scope: Scope) -> ReconciliationRun:
        if not BillingSettings.load().manual_recalculation:
            raise CommandError(f"{services.MANUAL_DISABLED_MESSAGE} (manual_recalculation_disabled)")
        run = run_create(scope=scope, trigger=RunTrigger.MANUAL, task_id=str(uuid.uuid4()))
        try:
            reconcile_billing_task.apply_async(args=[run.pk], task_id=run.task_id, retry_policy=PUBLISH_RETRY_POLICY)
        except BrokerUnavailable:
            self.stderr.write("The broker cannot be reached; running the reconciliation in this process.")
            return reconcile_run(run, progress=ProgressBar(self.stderr))
        self.stdout.write(f"Queued reconciliation run {run.pk} ({scope.describe()}) as task {run.task_id}.")
        run.refresh_from_db()
        return run

    def report(self, run: ReconciliationRun) -> None:
        self.stdout.write(f"Reconciliation run {run.pk} ({Scope.from_dict(run.scope).describe()}): {summary_of(run)}")
        if run.duration_ms is not None:
            self.stdout.write(f"Clients {run.processed}/{run.total}, items compared {run.items_processed}, "
                              f"took {run.duration_ms / 1000:.2f} s.")
        if run.unmatched:
            self.stdout.write(f"{run.unmatched} unmatched source(s): see {run_page(run)}")
