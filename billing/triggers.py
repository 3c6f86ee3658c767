"""Immediate-on-save reconciliation. A saved source record or contract leaves a durable request
(ReconciliationRequest), written in the transaction of the save itself, and after commit a Celery
task works it off; when the broker cannot be reached, the
request is worked off in this process instead, and whatever is still left (a lost task, a crash)
is drained by a periodic task. A save therefore never loses its reconciliation, and never fails
because of it: the save has already committed when this runs."""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from .choices import RunTrigger
from .models import BillingSettings, ReconciliationRequest
from .reconciliation import Scope, reconcile_now

logger = logging.getLogger(__name__)

CLAIM_TIMEOUT = timedelta(minutes=5)
# A request failing this often is left for a person (admin: Reconciliation requests, last_error).
MAX_ATTEMPTS = 10
DRAIN_AFTER = timedelta(seconds=30)
# Fail fast when Redis is down: one quick retry, then reconcile in-process.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def request_reconciliation(scope: Scope) -> ReconciliationRequest | None:
    """Ask for the reconciliation of `scope` once the current transaction commits."""
    if not BillingSettings.load().reconcile_on_save:
        return None
    request = ReconciliationRequest.objects.create(scope=scope.as_dict())
    transaction.on_commit(lambda: _dispatch(request.pk))
    return request


def _dispatch(request_id: int) -> None:
    from .tasks import reconcile_request_task

    try:
        reconcile_request_task.apply_async(args=[request_id], retry_policy=PUBLISH_RETRY_POLICY)
    except BrokerUnavailable:
        logger.warning("Broker unreachable; reconciling request %s in-process", request_id)
        _work_off_safely(request_id)
    except Exception:  # an eager task's own failure: the request stays for the drain
        logger.exception("Reconciliation request %s failed; the drain task will retry it", request_id)


def _work_off_safely(request_id: int) -> None:
    try:
        work_off(request_id)
    except Exception:
        logger.exception("Reconciliation request %s failed; the drain task will retry it", request_id)


def _claim(request_id: int) -> ReconciliationRequest | None:
    now = timezone.now()
    claimed = (ReconciliationRequest.objects.filter(pk=request_id)
               .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT))
               .update(claimed_at=now))
    return ReconciliationRequest.objects.filter(pk=request_id).first() if claimed else None


def work_off(request_id: int) -> bool:
    """Reconcile one request and delete it; False if someone else holds it or it is done."""
    request = _claim(request_id)
    if request is None:
        return False
    try:
        reconcile_now(Scope.from_dict(request.scope), trigger=RunTrigger.ON_SAVE)
    except Exception as error:
        ReconciliationRequest.objects.filter(pk=request_id).update(
            attempts=request.attempts + 1, last_error=f"{type(error).__name__}: {error}"[:2000])
        raise
    request.delete()
    return True


def drain(*, older_than: timedelta = DRAIN_AFTER) -> int:
    """Work off every request nobody finished; returns how many were done."""
    cutoff = timezone.now() - older_than
    done = 0
    for request_id in (ReconciliationRequest.objects.filter(created_at__lte=cutoff, attempts__lt=MAX_ATTEMPTS)
                       .order_by("pk").values_list("pk", flat=True)):
        try:
            done += work_off(request_id)
        except Exception:
            logger.exception("Reconciliation request %s failed again", request_id)
    return done


def on_ticket_record_changed(sender, *, kind: str, record_id: int, **_) -> None:
    request_reconciliation(Scope(record_kind=kind, record_id=record_id))
