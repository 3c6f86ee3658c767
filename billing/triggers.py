"""Immediate-on-save reconciliation. A saved source record or contract leaves a durable request
(ReconciliationRequest), written in the transaction of the save itself, and after commit a Celery
task works it off; when the broker cannot be reached, the
request is worked off in this process instead, and whatever is still left (a lost task, a crash)
is drained by a periodic task. A save therefore never loses its reconciliation, and never fails
because of it: the save has already committed when this runs."""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from .choices import RunTrigger
from .models import BillingSettings, ReconciliationRequest
from .reconciliation import Scope, reconcile_now

logger = logging.getLogger(__name__)

CLAIM_TIMEOUT = timedelta(minutes=5)
MAX_ATTEMPTS = ReconciliationRequest.MAX_ATTEMPTS
# Requests worked off in one go: a burst of saves becomes a few runs, not one run per save.
BATCH_SIZE = 1000
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
        work_off(request_id, batch=False)
    except Exception:
        logger.exception("Reconciliation request %s failed; the drain task will retry it", request_id)


def _claimable(now) -> Q:
    return Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT)


def _claim(request_id: int | None, *, created_before=None, batch: bool = True) -> list[ReconciliationRequest]:
    """Claim a request (when `request_id` is given, that one first: None if someone else holds
    it) and up to BATCH_SIZE - 1 others waiting with it, so a burst of saves is worked off in a
    few runs instead of one run each. Each UPDATE only takes rows nobody holds; rows claimed at
    the very same instant by another worker would only be reconciled twice, which is harmless."""
    now = timezone.now()
    if request_id is not None and not (ReconciliationRequest.objects.filter(pk=request_id)
                                       .filter(_claimable(now)).update(claimed_at=now)):
        return []
    if not batch:
        return list(ReconciliationRequest.objects.filter(pk=request_id))
    waiting = ReconciliationRequest.objects.filter(_claimable(now), attempts__lt=MAX_ATTEMPTS)
    if created_before is not None:
        waiting = waiting.filter(created_at__lte=created_before)
    limit = BATCH_SIZE - (request_id is not None)
    others = list(waiting.exclude(pk=request_id).order_by("pk").values_list("pk", flat=True)[:limit])
    if others:
        ReconciliationRequest.objects.filter(pk__in=others).filter(_claimable(now)).update(claimed_at=now)
    return list(ReconciliationRequest.objects.filter(claimed_at=now).order_by("pk"))


def coalesce(scopes) -> list[Scope]:
    """The scopes of a batch of requests as few scopes: the records of one kind together, the
    others once each."""
    records: dict[str, set[int]] = {}
    others: list[Scope] = []
    for scope in scopes:
        if scope.record_kind:
            records.setdefault(scope.record_kind, set()).update(scope.records)
        elif scope not in others:
            others.append(scope)
    return [*others, *(_records_scope(kind, ids) for kind, ids in sorted(records.items()))]


def _records_scope(kind: str, ids: set[int]) -> Scope:
    if len(ids) == 1:
        return Scope(record_kind=kind, record_id=next(iter(ids)))
    return Scope(record_kind=kind, record_ids=tuple(sorted(ids)))


def _reconcile(requests: list[ReconciliationRequest], *, count_attempt: bool = True) -> None:
    """Reconcile the requests' scopes and delete them. A failure counts as an attempt of each
    request unless it is a batch's (each request is then retried, and counted, on its own)."""
    try:
        for scope in coalesce(Scope.from_dict(request.scope) for request in requests):
            reconcile_now(scope, trigger=RunTrigger.ON_SAVE)
    except Exception as error:
        if count_attempt:
            ReconciliationRequest.objects.filter(pk__in=[r.pk for r in requests]).update(
                attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:2000])
        raise
    ReconciliationRequest.objects.filter(pk__in=[r.pk for r in requests]).delete()


def _reconcile_batch(requests: list[ReconciliationRequest]) -> None:
    if len(requests) == 1:
        _reconcile(requests)
        return
    try:
        _reconcile(requests, count_attempt=False)
    except Exception:
        logger.exception("A batch of %s reconciliation requests failed; retrying them one by one", len(requests))
        _work_off_one_by_one(requests)


def work_off(request_id: int, *, batch: bool = True) -> bool:
    """Reconcile a request, with whatever else is waiting when `batch` (the Celery task, the
    drain; not a save's in-process fallback, which must stay quick), and delete them; False if
    someone else holds it or it is done. A batch that fails is retried request by request, so
    one failing source does not hold back the others."""
    requests = _claim(request_id, batch=batch)
    if not requests:
        return False
    _reconcile_batch(requests)
    return True


def _work_off_one_by_one(requests: list[ReconciliationRequest]) -> None:
    failed = None
    for request in requests:
        # Renew the claim: a long retry must not be taken over by a drain meanwhile.
        ReconciliationRequest.objects.filter(pk=request.pk).update(claimed_at=timezone.now())
        try:
            _reconcile([request])
        except Exception as error:
            failed = error
    if failed is not None:
        raise failed


def drain(*, older_than: timedelta = DRAIN_AFTER) -> int:
    """Work off every request nobody finished, in batches; returns how many were done."""
    cutoff = timezone.now() - older_than
    done = 0
    while requests := _claim(None, created_before=cutoff):
        try:
            _reconcile_batch(requests)
        except Exception:
            logger.exception("Some reconciliation requests failed again")
        done += len(requests) - ReconciliationRequest.objects.filter(pk__in=[r.pk for r in requests]).count()
    return done


def on_ticket_record_changed(sender, *, kind: str, record_id: int, **_) -> None:
    request_reconciliation(Scope(record_kind=kind, record_id=record_id))
