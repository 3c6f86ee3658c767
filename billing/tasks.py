"""Thin Celery tasks of billing: ids in, call the reconciliation service. A run over several
clients fans out into one task per client so more workers finish sooner; tasks are acknowledged
late, and a client unit is idempotent, so a redelivered task only repeats harmless work."""

from celery import shared_task
from django.db import IntegrityError, OperationalError

from . import periods, triggers
from .choices import RunTrigger
from .models import BillingSettings, ReconciliationRun
from .reconciliation import Scope, reconcile_client, run_create, run_fail, run_finish_if_done, run_start

# A deadlock between two units, a dropped connection, or two units of different clients racing
# for the key of a source that moved between them: a retry reads the settled state.
RETRYABLE = (OperationalError, IntegrityError)


def _months_out(months) -> list[str] | None:
    return None if months is None else sorted(f"{month:%Y-%m}" for month in months)


def _months_in(months) -> frozenset | None:
    return None if months is None else frozenset(periods.parse_period(month) for month in months)


@shared_task(ignore_result=True, acks_late=True)
def reconcile_billing_task(run_id: int) -> None:
    run = ReconciliationRun.objects.get(pk=run_id)
    try:
        plan = run_start(run)
    except Exception as error:
        run_fail(run_id, error)
        raise
    if plan is None:
        return  # a redelivery of a run already under way: its client tasks carry on
    for client_id, months in sorted(plan.items(), key=lambda unit: unit[0]):
        reconcile_client_task.delay(run_id, client_id, _months_out(months))


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=5)
def reconcile_client_task(self, run_id: int, client_id: int, months: list[str] | None) -> None:
    run = ReconciliationRun.objects.get(pk=run_id)
    try:
        reconcile_client(run, client_id, _months_in(months))
    except RETRYABLE as error:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=error, countdown=2 ** self.request.retries) from error
        run_fail(run_id, error)
        raise
    except Exception as error:
        run_fail(run_id, error)
        raise
    run_finish_if_done(run_id)


@shared_task(bind=True, ignore_result=True, acks_late=True)
def reconcile_request_task(self, request_id: int) -> None:
    # A worker takes the waiting requests along; run eagerly (no broker) it is part of the save's
    # request and must stay quick.
    triggers.work_off(request_id, batch=not self.request.is_eager)


@shared_task(ignore_result=True)
def drain_reconciliation_requests_task() -> int:
    return triggers.drain()


@shared_task(ignore_result=True)
def scheduled_reconciliation_task() -> int | None:
    """The nightly safety net of immediate-on-save mode: reconcile everything."""
    if not BillingSettings.load().reconcile_on_save:
        return None
    run = run_create(scope=Scope(), trigger=RunTrigger.SCHEDULE)
    reconcile_billing_task.delay(run.pk)
    return run.pk
