"""Projects, tickets, time entries and expenses (SPEC §1)."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.currencies import ISO_4217_CODES
from rbac.choices import PROJECT_PERMISSION_META

from .choices import MAX_ENTRY_MINUTES, MIN_ENTRY_MINUTES, Activity, TicketPriority, TicketStatus
from .querysets import ProjectQuerySet, TicketQuerySet, TicketRecordQuerySet

PROJECT_KEY_MESSAGE = "A project key is 2–10 upper-case letters, e.g. MNX."
project_key_validator = RegexValidator(r"^[A-Z]{2,10}$", PROJECT_KEY_MESSAGE, code="invalid_key")
CURRENCY_CHOICES = [(code, code) for code in sorted(ISO_4217_CODES)]


class Project(models.Model):
    key = models.CharField(max_length=10, unique=True, validators=[project_key_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    budget_hours = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True,
                                       validators=[MinValueValidator(Decimal("0"))])
    budget_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                        validators=[MinValueValidator(Decimal("0"))])
    budget_currency = models.CharField(max_length=3, blank=True, choices=CURRENCY_CHOICES)
    # Counter row for per-project ticket numbers; read and bumped under select_for_update.
    next_ticket_number = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["key"]
        permissions = PROJECT_PERMISSION_META
        constraints = [
            models.CheckConstraint(condition=models.Q(budget_amount__isnull=True) | ~models.Q(budget_currency=""),
                                   name="project_budget_amount_has_currency"),
        ]

    def __str__(self) -> str:
        return f"{self.key} – {self.name}"


class Ticket(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="tickets")
    number = models.PositiveIntegerField(editable=False)
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    priority = models.CharField(max_length=10, choices=TicketPriority.choices, default=TicketPriority.MEDIUM)
    status = models.CharField(max_length=12, choices=TicketStatus.choices, default=TicketStatus.BACKLOG)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="assigned_tickets")
    due_date = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="created_tickets")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TicketQuerySet.as_manager()

    class Meta:
        ordering = ["project__key", "number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="ticket_project_number_unique")]
        indexes = [models.Index(fields=["project", "status"]), models.Index(fields=["assignee", "status"])]
        # The text filter (icontains on title or description) has trigram indexes on PostgreSQL,
        # made in migration 0002: SQLite has no GIN indexes, so they are not declared here.

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    @property
    def key(self) -> str:
        return f"{self.project.key}-{self.number}"


class TimeEntry(models.Model):
    # No index of its own: the covering index below starts with the ticket.
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="time_entries", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="time_entries")
    work_date = models.DateField(help_text=_("Local date the work was done."))
    minutes = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(MIN_ENTRY_MINUTES), MaxValueValidator(MAX_ENTRY_MINUTES)]
    )
    activity = models.CharField(max_length=20, choices=Activity.choices, default=Activity.DEVELOPMENT)
    description = models.TextField(blank=True)
    billable = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TicketRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-work_date", "-id"]
        verbose_name_plural = "time entries"
        constraints = [
            models.CheckConstraint(condition=models.Q(minutes__gte=MIN_ENTRY_MINUTES, minutes__lte=MAX_ENTRY_MINUTES),
                                   name="time_entry_minutes_range"),
        ]
        indexes = [
            # Covering (PostgreSQL): the sums of a ticket's or a project's minutes — logged minutes in
            # ticket lists, budgets, settlement totals — read the index alone, never the table.
            models.Index(fields=["ticket", "work_date"], include=["minutes", "billable"],
                         name="time_entry_ticket_day"),
            models.Index(fields=["user", "work_date"]),
            models.Index(fields=["work_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.minutes} min on {self.work_date} by {self.user}"


class Expense(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="expenses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="expenses")
    date = models.DateField()
    description = models.CharField(max_length=500)
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    billable = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TicketRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="expense_amount_positive")]
        indexes = [models.Index(fields=["ticket", "date"]), models.Index(fields=["date"])]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on {self.date}"
