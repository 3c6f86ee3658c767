"""Billing (SPEC §4): clients and their contracts (rate cards, fees, timebanks), manual sales
lines, the billing items that reconciliation derives from every billable source, and the record
of each reconciliation (runs, unmatched sources, log). Runs and invoices exist here so items can
point at them; building and posting them belong to the run/invoice services."""

import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from tickets.choices import Activity
from tickets.models import CURRENCY_CHOICES, Project, Ticket

from .choices import (
    LIVE_STATUSES,
    ItemStatus,
    LogAction,
    RunStatus,
    RunTrigger,
    SourceType,
    UnmatchedReason,
)
from .querysets import BillingQuerySet

ZERO = Decimal("0")
DEFAULT_TIME_ZONE = "Europe/Oslo"
VAT_RATE_VALIDATORS = [MinValueValidator(ZERO), MaxValueValidator(Decimal("1"))]
POSITIVE_MONEY = [MinValueValidator(ZERO)]


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone %(zone)s; use an IANA name such as Europe/Oslo."),
                              code="invalid_time_zone", params={"zone": value})


class BillingAccess(models.Model):
    """Holds no rows: it exists so the global permissions billing.view/manage/admin exist."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view", "Billing: view items, runs, invoices and logs"),
            ("manage", "Billing: recalculate, build drafts, remove from run, delete run, void"),
            ("admin", "Billing: post invoices, credit notes, settings"),
        ]

    def __str__(self) -> str:
        return "Billing access"


class Client(models.Model):
    name = models.CharField(max_length=200, unique=True)
    org_number = models.CharField(max_length=40, blank=True)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.25"),
                                   validators=VAT_RATE_VALIDATORS, help_text=_("0.25 means 25 %."))
    time_zone = models.CharField(max_length=64, default=DEFAULT_TIME_ZONE, validators=[validate_time_zone])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BillingQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contract(models.Model):
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="contracts")
    name = models.CharField(max_length=200)
    projects = models.ManyToManyField(Project, through="ContractProject", related_name="contracts")
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text=_("Empty: open-ended."))
    hourly_rate = models.DecimalField(max_digits=12, decimal_places=2, validators=POSITIVE_MONEY)
    monthly_fee = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True,
                                      validators=POSITIVE_MONEY)
    timebank_hours = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True,
                                         validators=[MinValueValidator(Decimal("0.01"))],
                                         help_text=_("Hours per month covered at no charge; unused hours lapse."))
    overage_rate = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True,
                                       validators=POSITIVE_MONEY,
                                       help_text=_("Hourly rate beyond the timebank; empty: the normal rate."))
    rounding_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(240)],
        help_text=_("Round each entry's minutes up to a multiple of this, e.g. 15."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BillingQuerySet.as_manager()

    class Meta:
        ordering = ["client__name", "valid_from", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_to__isnull=True) | models.Q(valid_to__gte=models.F("valid_from")),
                name="contract_validity_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.client} · {self.name}"

    def covers(self, day) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class ContractProject(models.Model):
    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="project_links")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="contract_links")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contract", "project"], name="contract_project_unique")]

    def __str__(self) -> str:
        return f"{self.contract_id} covers {self.project_id}"


class ContractRate(models.Model):
    """One line of a contract's rate card: the hourly rate for an activity."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="rates")
    activity = models.CharField(max_length=20, choices=Activity.choices)
    hourly_rate = models.DecimalField(max_digits=12, decimal_places=2, validators=POSITIVE_MONEY)

    class Meta:
        ordering = ["activity"]
        constraints = [models.UniqueConstraint(fields=["contract", "activity"], name="contract_rate_activity_unique")]

    def __str__(self) -> str:
        return f"{self.activity}: {self.hourly_rate}"


class SalesLine(models.Model):
    """A manual invoice line entered by billing staff (source `sales_order`)."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="sales_lines")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, null=True, blank=True, related_name="sales_lines")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, null=True, blank=True, related_name="sales_lines")
    date = models.DateField(help_text=_("Local date; decides the billing month."))
    description = models.CharField(max_length=500)
    qty = models.DecimalField(max_digits=14, decimal_places=4, validators=[MinValueValidator(Decimal("0.0001"))])
    unit_price = models.DecimalField(max_digits=14, decimal_places=4)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BillingQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "-id"]

    def __str__(self) -> str:
        return f"{self.client}: {self.description}"


class BillingRun(models.Model):
    """A billing run (built and posted by the run services)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        POSTED = "posted", _("Posted")

    period_month = models.DateField(help_text=_("First day of the billing month."))
    include_prior_periods = models.BooleanField(
        default=True, help_text=_("Also bill pending items of earlier months (SPEC §4: on by default)."))
    client_ids = models.JSONField(null=True, blank=True, help_text=_("The clients asked for; empty: all."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    posted_at = models.DateTimeField(null=True, blank=True)

    objects = BillingQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.period_month:%Y-%m})"


class Invoice(models.Model):
    """A draft or posted invoice of one client in one currency (built by the run services)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        POSTED = "posted", _("Posted")

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="invoices")
    run = models.ForeignKey(BillingRun, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    credited_invoice = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="credit_notes")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    period_month = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # Gapless per series and year: "2026-0001" (invoices), "CN-2026-0001" (credit notes).
    series = models.CharField(max_length=10, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    sequence = models.PositiveIntegerField(null=True, blank=True)
    number = models.CharField(max_length=20, blank=True)
    net = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    vat = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    gross = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    posted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BillingQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["series", "year", "sequence"], condition=models.Q(sequence__isnull=False),
                                    name="invoice_number_unique"),
            models.CheckConstraint(condition=models.Q(status="draft") | models.Q(sequence__isnull=False),
                                   name="invoice_posted_has_number"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """How people name it: the number once posted, else the draft id and its run."""
        if self.number:
            return self.number
        return f"draft #{self.pk}" + (f" (run {self.run_id})" if self.run_id else "")


class InvoiceCounter(models.Model):
    """The next number of a series in a year, taken under a row lock by the posting transaction:
    a rolled-back post gives its number back, so numbers stay gapless."""

    series = models.CharField(max_length=10)
    year = models.PositiveSmallIntegerField()
    next_number = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="invoice_counter_unique")]

    def __str__(self) -> str:
        return f"{self.series or 'invoice'} {self.year}: next {self.next_number}"


class ReconciliationRun(models.Model):
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text=_("Empty: the system."))
    scope = models.JSONField(default=dict, help_text=_("client, contract, period, source_type/source_id."))
    task_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    # Progress: the run is split into one unit per client.
    total = models.PositiveIntegerField(default=0, help_text=_("Clients to reconcile."))
    processed = models.PositiveIntegerField(default=0, help_text=_("Clients reconciled so far."))
    items_processed = models.PositiveIntegerField(default=0, help_text=_("Item specs compared so far."))
    created = models.PositiveIntegerField(default=0)
    superseded = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    skipped_locked = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = BillingQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Reconciliation {self.pk} ({self.trigger}, {self.status})"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class UnmatchedSource(models.Model):
    """A billable source record a run could not turn into an item, and why."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="unmatched_sources")
    source_type = models.CharField(max_length=20, choices=SourceType.choices)
    source_id = models.BigIntegerField()
    reason = models.CharField(max_length=20, choices=UnmatchedReason.choices)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                related_name="+")
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                               related_name="+")
    source_date = models.DateField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["source_type", "source_id"]

    def __str__(self) -> str:
        return f"{self.source_type}:{self.source_id} ({self.reason})"


class ReconciliationUnit(models.Model):
    """A client unit of a run that has been counted: a redelivered task redoes the (idempotent)
    work but does not count it twice."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="units")
    client_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "client_id"], name="reconciliation_unit_once")]

    def __str__(self) -> str:
        return f"Run {self.run_id}, client {self.client_id}"


class BillingItem(models.Model):
    # Identity of the source slot this item stands for, e.g. "ticket_time:17" or
    # "contract_period:3:2026-10"; at most one live item per key (constraint below).
    source_key = models.CharField(max_length=64)
    source_type = models.CharField(max_length=20, choices=SourceType.choices)
    source_id = models.BigIntegerField()
    source_date = models.DateField(help_text=_("Local date of the source (first day of the month for fees)."))
    # Every index is written on each reconciliation insert: the client and ticket foreign keys are
    # served by the composite indexes that start with them (Meta.indexes), not by their own.
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="items", db_index=False)
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="items")
    # Historical references: an item outlives a deleted ticket, so no database constraint.
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                related_name="+")
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                               related_name="+", db_index=False)
    description = models.CharField(max_length=500)
    qty = models.DecimalField(max_digits=14, decimal_places=4)
    unit_price = models.DecimalField(max_digits=14, decimal_places=4)
    total = models.DecimalField(max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=4)
    status = models.CharField(max_length=12, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="items")
    run = models.ForeignKey(BillingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="items")
    reconciliation_run = models.ForeignKey(ReconciliationRun, null=True, blank=True, on_delete=models.PROTECT,
                                           related_name="items")
    period_month = models.DateField(help_text=_("First day of the billing month (client's zone)."))
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="superseded_by", help_text=_("The item this one replaced."))
    original_item = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="adjustments", help_text=_("For credit/debit items."))
    void_reason = models.CharField(max_length=500, blank=True)
    # Digest of the compared fields (billing.sources.fingerprint): reconciliation diffs by it.
    # Empty on items written before it existed; those are compared field by field.
    fingerprint = models.BigIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BillingQuerySet.as_manager()

    class Meta:
        ordering = ["client_id", "period_month", "source_type", "source_date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source_key"], condition=models.Q(status__in=LIVE_STATUSES),
                                    name="billing_item_one_live_per_source"),
            models.CheckConstraint(condition=models.Q(period_end__gt=models.F("period_start")),
                                   name="billing_item_period_ordered"),
        ]
        indexes = [
            models.Index(fields=["client", "period_month", "status"]),
            models.Index(fields=["source_type", "source_id"]),
            models.Index(fields=["status", "period_month"]),
            models.Index(fields=["ticket", "source_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.source_key} {self.total} {self.currency} ({self.status})"


class BillingLog(models.Model):
    """Append-only log of billing actions: who, what scope, how many items, how long, outcome."""

    action = models.CharField(max_length=20, choices=LogAction.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text=_("Empty: the system."))
    scope = models.JSONField(default=dict)
    item_count = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    summary = models.CharField(max_length=500)
    reconciliation_run = models.ForeignKey(ReconciliationRun, null=True, blank=True, on_delete=models.PROTECT,
                                           related_name="logs")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BillingQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.summary}"


class BillingSettings(models.Model):
    """One row (pk=1): switches and defaults for billing."""

    reconcile_on_save = models.BooleanField(default=True, help_text=_("Reconcile a source right after it is saved."))
    manual_recalculation = models.BooleanField(default=True, help_text=_("Allow recalculation on demand."))
    default_currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="NOK")
    default_vat_rate = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.25"),
                                           validators=VAT_RATE_VALIDATORS)
    default_time_zone = models.CharField(max_length=64, default=DEFAULT_TIME_ZONE, validators=[validate_time_zone])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "billing settings"

    def __str__(self) -> str:
        return "Billing settings"

    @classmethod
    def load(cls) -> "BillingSettings":
        return cls.objects.get_or_create(pk=1)[0]


class ReconciliationRequest(models.Model):
    """Durable outbox: a reconciliation asked for on save, deleted once done. The periodic drain
    task picks up whatever a lost task or an unreachable broker left here."""

    scope = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by whoever works on it; a claim older than CLAIM_TIMEOUT is taken over by the drain.
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)

    # A request failing this often is left for a person (admin: Reconciliation requests, last_error).
    MAX_ATTEMPTS = 10

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Reconciliation request {self.pk}: {self.scope}"
