"""Every write of billing data that people make: clients, contracts (with rate cards and covered
projects), sales lines, void/restore of items, settings, and recalculation on demand. Each checks
the actor's billing permission, runs in a transaction, logs what it did, and asks for the
reconciliation of what it changed after commit."""

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from kombu.exceptions import OperationalError as BrokerUnavailable

from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, validate_model
from tickets.models import Project

from . import guards
from .choices import ItemStatus, LogAction, RunTrigger
from .models import (
    BillingItem,
    BillingLog,
    BillingSettings,
    Client,
    Contract,
    ContractProject,
    ContractRate,
    ReconciliationRun,
    SalesLine,
)
from .money import line_total
from .querysets import MISSING_BILLING_PERMISSION_MESSAGE, billing_allows, required_billing_permission
from .reconciliation import Scope, reconcile_run, run_create
from .triggers import request_reconciliation

CONTRACT_OVERLAP_MESSAGE = ("Project {project} is already covered by contract “{other}” ({start} – {end}) in "
                            "that time; contracts of one project may not overlap.")
CONTRACT_HAS_ITEMS_MESSAGE = "Contract “{contract}” has billing items; end its validity instead of deleting it."
CLIENT_HAS_DATA_MESSAGE = "Client “{client}” has contracts, sales lines or billing items and cannot be deleted."
SALES_LINE_CONTRACT_MESSAGE = "The contract belongs to another client."
ITEM_NOT_PENDING_MESSAGE = "Only a pending item can be voided; this one is {status}."
ITEM_NOT_VOID_MESSAGE = "Only a void item can be restored; this one is {status}."
VOID_REASON_REQUIRED_MESSAGE = "Say why the item is not billed."
MANUAL_DISABLED_MESSAGE = "Manual recalculation is switched off in the billing settings."
UNKNOWN_OBJECT_MESSAGE = "No {what} with id {pk}."
SCOPE_CONTRACT_MESSAGE = "Contract {contract} belongs to client {owner}, not to client {client}."
OPEN_END = "open"
_TOTAL = BillingItem._meta.get_field("total")
MAX_LINE_TOTAL = Decimal(10) ** (_TOTAL.max_digits - _TOTAL.decimal_places)  # what BillingItem.total holds
LINE_TOO_LARGE_MESSAGE = "qty × unit_price must stay below {limit}."


def require_billing(actor, action: str) -> None:
    if not billing_allows(actor, action):
        permission = required_billing_permission(action)
        raise PermissionDenied(MISSING_BILLING_PERMISSION_MESSAGE.format(permission=permission),
                               code="missing_permission")


def _log(*, action: str, actor, summary: str, scope: dict | None = None, item_count: int = 0) -> None:
    BillingLog.objects.create(action=action, actor=actor, scope=scope or {}, item_count=item_count,
                              summary=summary[:500])


def _save(instance, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(instance, name, value)
    validate_model(instance)
    instance.save()


# --- Clients ----------------------------------------------------------------------------------

@transaction.atomic
def client_create(*, actor, **fields) -> Client:
    require_billing(actor, "manage")
    defaults = BillingSettings.load()
    fields.setdefault("currency", defaults.default_currency)
    fields.setdefault("vat_rate", defaults.default_vat_rate)
    fields.setdefault("time_zone", defaults.default_time_zone)
    client = Client()
    _save(client, fields)
    return client


@transaction.atomic
def client_update(*, actor, client: Client, changes: dict[str, Any]) -> Client:
    require_billing(actor, "manage")
    client = Client.objects.select_for_update().get(pk=client.pk)
    _save(client, changes)
    # Currency, VAT rate and time zone shape every item of the client.
    request_reconciliation(Scope(client_id=client.pk))
    return client


@transaction.atomic
def client_delete(*, actor, client: Client) -> None:
    require_billing(actor, "manage")
    client = Client.objects.select_for_update().get(pk=client.pk)
    if client.contracts.exists() or client.sales_lines.exists() or client.items.exists():
        raise Conflict(CLIENT_HAS_DATA_MESSAGE.format(client=client), code="client_in_use")
    client.delete()


# --- Contracts --------------------------------------------------------------------------------

def _lock_projects(project_ids) -> None:
    # Contract saves that cover the same project serialize on its row, so the overlap check
    # below cannot be raced (rows in primary-key order: no deadlock between two saves).
    list(Project.objects.select_for_update().filter(pk__in=project_ids).order_by("pk").values_list("pk"))


def _require_no_overlap(contract: Contract, project_ids) -> None:
    others = (Contract.objects.exclude(pk=contract.pk).filter(project_links__project_id__in=project_ids)
              .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=contract.valid_from)))
    if contract.valid_to:
        others = others.filter(valid_from__lte=contract.valid_to)
    clash = (ContractProject.objects.filter(contract__in=others, project_id__in=project_ids)
             .select_related("contract", "project").order_by("project__key").first())
    if clash:
        other = clash.contract
        raise Conflict(CONTRACT_OVERLAP_MESSAGE.format(project=clash.project.key, other=other.name,
                                                       start=other.valid_from, end=other.valid_to or OPEN_END),
                       code="contract_overlap", extra={"contract": other.pk, "project": clash.project.key})


def _set_projects(contract: Contract, projects) -> None:
    wanted = {project.pk for project in projects}
    ContractProject.objects.filter(contract=contract).exclude(project_id__in=wanted).delete()
    have = set(ContractProject.objects.filter(contract=contract).values_list("project_id", flat=True))
    ContractProject.objects.bulk_create([ContractProject(contract=contract, project_id=pk) for pk in wanted - have])


def _set_rates(contract: Contract, rates: dict[str, Decimal]) -> None:
    ContractRate.objects.filter(contract=contract).exclude(activity__in=list(rates)).delete()
    for activity, hourly_rate in rates.items():
        rate = ContractRate(contract=contract, activity=activity, hourly_rate=hourly_rate)
        validate_model(rate, exclude=["contract"])
        ContractRate.objects.update_or_create(contract=contract, activity=activity,
                                              defaults={"hourly_rate": hourly_rate})


def _write_contract(contract: Contract, fields: dict[str, Any], projects, rates) -> Contract:
    for name, value in fields.items():
        setattr(contract, name, value)
    validate_model(contract)
    if contract.valid_to and contract.valid_to < contract.valid_from:
        raise InvalidInput.for_field("valid_to", "The contract cannot end before it starts.", code="invalid_period")
    project_ids = sorted({p.pk for p in projects} if projects is not None
                         else set(contract.project_links.values_list("project_id", flat=True)))
    _lock_projects(project_ids)
    _require_no_overlap(contract, project_ids)
    contract.save()
    if projects is not None:
        _set_projects(contract, projects)
    if rates is not None:
        _set_rates(contract, rates)
    request_reconciliation(Scope(contract_id=contract.pk))
    return contract


@transaction.atomic
def contract_create(*, actor, projects=(), rates: dict[str, Decimal] | None = None, **fields) -> Contract:
    require_billing(actor, "manage")
    return _write_contract(Contract(), fields, list(projects), rates or {})


@transaction.atomic
def contract_update(*, actor, contract: Contract, changes: dict[str, Any], projects=None,
                    rates: dict[str, Decimal] | None = None) -> Contract:
    require_billing(actor, "manage")
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    return _write_contract(contract, changes, projects, rates)


@transaction.atomic
def contract_delete(*, actor, contract: Contract) -> None:
    require_billing(actor, "manage")
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    if contract.items.exists() or contract.sales_lines.exists():
        raise Conflict(CONTRACT_HAS_ITEMS_MESSAGE.format(contract=contract.name), code="contract_in_use")
    contract.delete()


# --- Sales lines ------------------------------------------------------------------------------

def require_line_fits(qty: Decimal, unit_price: Decimal) -> None:
    """Each factor fits its column; their product must fit an item's total too (PostgreSQL would
    refuse the item, and every later reconciliation of its client with it)."""
    if abs(line_total(qty, unit_price)) >= MAX_LINE_TOTAL:
        raise InvalidInput.for_field("unit_price", LINE_TOO_LARGE_MESSAGE.format(limit=MAX_LINE_TOTAL),
                                     code="total_too_large")


def _check_sales_line(line: SalesLine) -> None:
    validate_model(line)
    require_line_fits(line.qty, line.unit_price)
    if line.contract_id and line.contract.client_id != line.client_id:
        raise InvalidInput.for_field("contract", SALES_LINE_CONTRACT_MESSAGE, code="contract_of_other_client")


@transaction.atomic
def sales_line_create(*, actor, **fields) -> SalesLine:
    require_billing(actor, "manage")
    line = SalesLine(created_by=actor, **fields)
    _check_sales_line(line)
    line.save()
    request_reconciliation(Scope(record_kind="sales_line", record_id=line.pk))
    return line


@transaction.atomic
def sales_line_update(*, actor, line: SalesLine, changes: dict[str, Any]) -> SalesLine:
    require_billing(actor, "manage")
    line = SalesLine.objects.select_for_update().get(pk=line.pk)
    guards.require_unlocked("sales_line", line.pk)
    for name, value in changes.items():
        setattr(line, name, value)
    _check_sales_line(line)
    line.save()
    request_reconciliation(Scope(record_kind="sales_line", record_id=line.pk))
    return line


@transaction.atomic
def sales_line_delete(*, actor, line: SalesLine) -> None:
    require_billing(actor, "manage")
    line = SalesLine.objects.select_for_update().get(pk=line.pk)
    guards.require_unlocked("sales_line", line.pk)
    line_id = line.pk
    line.delete()
    request_reconciliation(Scope(record_kind="sales_line", record_id=line_id))


# --- Items: void and restore ------------------------------------------------------------------

def _lock_item(item: BillingItem) -> BillingItem:
    return BillingItem.objects.select_for_update().get(pk=item.pk)


@transaction.atomic
def item_void(*, actor, item: BillingItem, reason: str) -> BillingItem:
    require_billing(actor, "manage")
    if not (reason or "").strip():
        raise InvalidInput.for_field("reason", VOID_REASON_REQUIRED_MESSAGE, code="required")
    item = _lock_item(item)
    if item.status != ItemStatus.PENDING:
        raise Conflict(ITEM_NOT_PENDING_MESSAGE.format(status=item.status), code="item_not_pending")
    item.status, item.void_reason = ItemStatus.VOID, reason.strip()[:500]
    item.save(update_fields=["status", "void_reason", "updated_at"])
    _log(action=LogAction.VOID, actor=actor, item_count=1, scope={"item": item.pk, "client_id": item.client_id},
         summary=f"Voided {item.source_key} ({item.total} {item.currency}): {item.void_reason}")
    return item


@transaction.atomic
def item_restore(*, actor, item: BillingItem) -> BillingItem:
    require_billing(actor, "manage")
    item = _lock_item(item)
    if item.status != ItemStatus.VOID:
        raise Conflict(ITEM_NOT_VOID_MESSAGE.format(status=item.status), code="item_not_void")
    item.status, item.void_reason = ItemStatus.PENDING, ""
    item.save(update_fields=["status", "void_reason", "updated_at"])
    _log(action=LogAction.RESTORE, actor=actor, item_count=1, scope={"item": item.pk, "client_id": item.client_id},
         summary=f"Restored {item.source_key} ({item.total} {item.currency}) to pending")
    return item


# --- Settings ---------------------------------------------------------------------------------

@transaction.atomic
def settings_update(*, actor, changes: dict[str, Any]) -> BillingSettings:
    require_billing(actor, "admin")
    current = BillingSettings.load()
    current = BillingSettings.objects.select_for_update().get(pk=current.pk)
    changed = {name: value for name, value in changes.items() if getattr(current, name) != value}
    _save(current, changed)
    if changed:
        _log(action=LogAction.SETTINGS, actor=actor, scope={},
             summary="Changed " + ", ".join(f"{name}={value}" for name, value in sorted(changed.items())))
    return current


# --- Recalculation on demand ------------------------------------------------------------------

def resolve_scope(*, client_id: int | None = None, contract_id: int | None = None,
                  period: date | None = None) -> Scope:
    """A manual scope, with its client/contract checked to exist (404 otherwise)."""
    if client_id is not None and not Client.objects.filter(pk=client_id).exists():
        raise NotFound(UNKNOWN_OBJECT_MESSAGE.format(what="client", pk=client_id))
    if contract_id is not None:
        owner = Contract.objects.filter(pk=contract_id).values_list("client_id", flat=True).first()
        if owner is None:
            raise NotFound(UNKNOWN_OBJECT_MESSAGE.format(what="contract", pk=contract_id))
        if client_id is not None and owner != client_id:
            raise InvalidInput.for_field("contract", SCOPE_CONTRACT_MESSAGE.format(contract=contract_id, owner=owner,
                                                                                   client=client_id),
                                         code="contract_of_other_client")
    return Scope(client_id=client_id, contract_id=contract_id, period=period)


def _require_manual_enabled() -> None:
    if not BillingSettings.load().manual_recalculation:
        raise Conflict(MANUAL_DISABLED_MESSAGE, code="manual_recalculation_disabled")


def recalculation_request(*, actor, scope: Scope) -> ReconciliationRun:
    """Queue a manual reconciliation of `scope` as a Celery task; the run's task id lets the caller
    follow it. With the broker unreachable the same run is worked off here and now instead."""
    from .tasks import reconcile_billing_task

    require_billing(actor, "manage")
    _require_manual_enabled()
    run = run_create(scope=scope, trigger=RunTrigger.MANUAL, actor=actor, task_id=str(uuid.uuid4()))
    try:
        reconcile_billing_task.apply_async(args=[run.pk], task_id=run.task_id)
    except BrokerUnavailable:
        reconcile_run(run)
    run.refresh_from_db()
    return run


def recalculate_now(*, actor, scope: Scope, progress=None, workers: int = 1) -> ReconciliationRun:
    """A manual reconciliation in this process, or in `workers` forked processes (the management
    command). `actor` None: the system."""
    if actor is not None:
        require_billing(actor, "manage")
    _require_manual_enabled()
    return reconcile_run(run_create(scope=scope, trigger=RunTrigger.MANUAL, actor=actor), progress=progress,
                         workers=workers)
