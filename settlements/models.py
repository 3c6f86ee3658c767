"""Settlements (SPEC §3): cross-project bundles of tickets with a status workflow, attachments in
S3, share links for customers and an append-only event log."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from .choices import AttachmentCategory, AttachmentState, EventKind, SettlementStatus
from .querysets import SettlementQuerySet

S = SettlementStatus


class SettlementCounter(models.Model):
    """Next settlement number per prefix. Locked (select_for_update) by the transaction that
    creates a settlement, so numbers are unique and gapless under concurrency."""

    prefix = models.CharField(max_length=10, unique=True)
    next_number = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.prefix}: next {self.next_number}"


class Settlement(models.Model):
    prefix = models.CharField(max_length=10, editable=False)
    number = models.PositiveIntegerField(editable=False)
    name = models.CharField(max_length=200)
    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=10, choices=SettlementStatus.choices, default=S.DRAFT, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    paid_at = models.DateTimeField(null=True, blank=True, editable=False)
    notes = models.TextField(blank=True, help_text="Markdown.")
    projects = models.ManyToManyField("tickets.Project", through="SettlementProject", related_name="settlements")
    tickets = models.ManyToManyField("tickets.Ticket", through="SettlementTicket", related_name="settlements")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="created_settlements", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Soft delete: a deleted settlement keeps its number (no gaps) and its history.
    is_active = models.BooleanField(default=True, editable=False)

    objects = SettlementQuerySet.as_manager()

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["prefix", "number"], name="settlement_number_unique"),
            models.CheckConstraint(condition=Q(period_start__lte=F("period_end")), name="settlement_period_order"),
            # The timestamps always agree with the status (SPEC §3 workflow).
            models.CheckConstraint(
                condition=(Q(status=S.DRAFT, sent_at__isnull=True, paid_at__isnull=True)
                           | Q(status=S.SENT, sent_at__isnull=False, paid_at__isnull=True)
                           | Q(status=S.PAID, sent_at__isnull=False, paid_at__isnull=False)),
                name="settlement_status_timestamps",
            ),
            models.CheckConstraint(condition=Q(is_active=True) | Q(status=S.DRAFT),
                                   name="settlement_deleted_only_as_draft"),
        ]
        indexes = [models.Index(fields=["status", "is_active"]), models.Index(fields=["period_start", "period_end"])]

    def __str__(self) -> str:
        return f"{self.display_number} {self.name}"

    @property
    def display_number(self) -> str:
        return f"{self.prefix}-{self.number}"


class SettlementProject(models.Model):
    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="settlement_projects")
    project = models.ForeignKey("tickets.Project", on_delete=models.PROTECT, related_name="settlement_links")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["settlement", "project"], name="settlement_project_unique")]

    def __str__(self) -> str:
        return f"{self.settlement_id} – {self.project_id}"


class SettlementTicket(models.Model):
    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="settlement_tickets")
    # The freeze guard refuses to delete a ticket of an active settlement; links of deleted
    # (soft) settlements go with the ticket.
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="settlement_links")
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["settlement", "ticket"], name="settlement_ticket_unique")]
        indexes = [models.Index(fields=["ticket", "settlement"])]

    def __str__(self) -> str:
        return f"{self.settlement_id} – {self.ticket_id}"


class SettlementAttachment(models.Model):
    settlement = models.ForeignKey(Settlement, on_delete=models.PROTECT, related_name="attachments")
    file = models.FileField(max_length=500)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    category = models.CharField(max_length=30, choices=AttachmentCategory.choices, default=AttachmentCategory.OTHER)
    state = models.CharField(max_length=10, choices=AttachmentState.choices, default=AttachmentState.DRAFT)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.original_name


class SettlementShareLink(models.Model):
    """A capability link for the customer page. Only the token's SHA-256 is stored."""

    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="share_links")
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.settlement_id})"


class SettlementAcceptance(models.Model):
    """The customer's confirmation, recorded through a share link."""

    settlement = models.OneToOneField(Settlement, on_delete=models.PROTECT, related_name="acceptance")
    share_link = models.ForeignKey(SettlementShareLink, on_delete=models.PROTECT, related_name="acceptances")
    accepted_by_name = models.CharField(max_length=200)
    accepted_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.accepted_by_name} at {self.accepted_at:%Y-%m-%d %H:%M}"


class SettlementEvent(models.Model):
    """Append-only audit record: who, when, what, before/after. Never updated or deleted."""

    settlement = models.ForeignKey(Settlement, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # Who acted when there is no user (e.g. "customer: Jane Doe").
    actor_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["settlement", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} on {self.settlement_id}"
