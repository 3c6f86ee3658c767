"""Enums of billing: item statuses and source types, run triggers, log actions."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ItemStatus(models.TextChoices):
    # Awaiting invoicing; reconciliation may supersede it when its source changes.
    PENDING = "pending", _("Pending")
    # In a draft invoice: its source record is locked until removed from the run.
    RESERVED = "reserved", _("Reserved (draft)")
    # On a posted invoice: permanently locked; corrected only by credit/debit.
    INVOICED = "invoiced", _("Invoiced")
    # Reversed by a credit note; its source is unlocked and billed again.
    CREDITED = "credited", _("Credited")
    # Billing staff decided not to bill it; can be restored to pending.
    VOID = "void", _("Void")
    # Replaced by a newer item after its source changed (or vanished).
    SUPERSEDED = "superseded", _("Superseded")


# Items that stand for their source record now; at most one per source key.
LIVE_STATUSES = (ItemStatus.PENDING, ItemStatus.VOID, ItemStatus.RESERVED, ItemStatus.INVOICED)
# Items that reconciliation may replace; the others lock their source.
REPLACEABLE_STATUSES = (ItemStatus.PENDING, ItemStatus.VOID)
LOCKED_STATUSES = (ItemStatus.RESERVED, ItemStatus.INVOICED)


class SourceType(models.TextChoices):
    # A billable time entry (or the part of it beyond the timebank).
    TICKET_TIME = "ticket_time", _("Ticket time")
    # A billable expense.
    EXPENSE = "expense", _("Expense")
    # A contract's monthly fee.
    CONTRACT_PERIOD = "contract_period", _("Contract period fee")
    # The part of a time entry covered by the contract's monthly timebank (price 0).
    TIMEBANK = "timebank", _("Timebank")
    # A manual invoice line entered by billing staff.
    SALES_ORDER = "sales_order", _("Sales line")
    # A negative item reversing an original (credit notes).
    CREDIT = "credit", _("Credit")
    # A positive adjustment linked to an original item, billed in the next run.
    DEBIT = "debit", _("Debit")


class UnmatchedReason(models.TextChoices):
    # No contract covers the source's project on its date.
    NO_CONTRACT = "no_contract", _("No contract in force")
    # An expense in another currency than its client's.
    CURRENCY_MISMATCH = "currency_mismatch", _("Currency differs from the client's")


class RunTrigger(models.TextChoices):
    # A source record or contract was saved.
    ON_SAVE = "on_save", _("On save")
    # Someone asked for it (API, admin, management command).
    MANUAL = "manual", _("Manual")
    # The periodic safety-net run.
    SCHEDULE = "schedule", _("Schedule")


class RunStatus(models.TextChoices):
    # Accepted, waiting for a worker.
    QUEUED = "queued", _("Queued")
    # A worker is on it; `processed`/`total` tell how far.
    RUNNING = "running", _("Running")
    # Finished; the counts are final.
    SUCCEEDED = "succeeded", _("Succeeded")
    # Stopped by an error; units finished before it stay applied.
    FAILED = "failed", _("Failed")


class LogAction(models.TextChoices):
    RECONCILE = "reconcile", _("Reconciliation")
    VOID = "void", _("Void")
    RESTORE = "restore", _("Restore")
    SETTINGS = "settings", _("Settings changed")
    BUILD = "build", _("Draft build")
    REMOVE = "remove", _("Removed from run")
    DELETE_RUN = "delete_run", _("Run deleted")
    REFRESH = "refresh", _("Draft refreshed")
    POST = "post", _("Posted")
    CREDIT = "credit", _("Credit note")
    DEBIT = "debit", _("Debit adjustment")
