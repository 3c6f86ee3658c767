"""Settlement statuses, the workflow map, attachment categories and states, event kinds."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class SettlementStatus(models.TextChoices):
    # Being prepared: editable, tickets can be linked and unlinked, tickets not frozen.
    DRAFT = "draft", _("Draft")
    # Sent to the customer: linked tickets are frozen.
    SENT = "sent", _("Sent")
    # Paid by the customer: tickets stay frozen.
    PAID = "paid", _("Paid")


S = SettlementStatus
ALLOWED_SETTLEMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SENT}),
    S.SENT: frozenset({S.PAID, S.DRAFT}),
    S.PAID: frozenset({S.SENT}),
}
# Going back needs the project-admin role in every project of the settlement.
REVERSE_TRANSITIONS: frozenset[tuple[str, str]] = frozenset({(S.SENT, S.DRAFT), (S.PAID, S.SENT)})
# Statuses in which linked tickets are frozen.
FREEZING_STATUSES: frozenset[str] = frozenset({S.SENT, S.PAID})


class AttachmentCategory(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    REPORT = "report", _("Report")
    ACCEPTANCE_PROTOCOL = "acceptance_protocol", _("Acceptance protocol")
    OTHER = "other", _("Other")


class AttachmentState(models.TextChoices):
    # Not yet signed by both sides.
    DRAFT = "draft", _("Draft")
    # Signed.
    SIGNED = "signed", _("Signed")


class EventKind(models.TextChoices):
    CREATED = "created", _("Created")
    UPDATED = "updated", _("Updated")
    TRANSITIONED = "transitioned", _("Status changed")
    TICKET_LINKED = "ticket_linked", _("Ticket linked")
    TICKET_UNLINKED = "ticket_unlinked", _("Ticket unlinked")
    ATTACHMENT_UPLOADED = "attachment_uploaded", _("Attachment uploaded")
    ATTACHMENT_CHANGED = "attachment_changed", _("Attachment changed")
    ATTACHMENT_DELETED = "attachment_deleted", _("Attachment deleted")
    DELETED = "deleted", _("Deleted")
    SHARED = "shared", _("Share link created")
    SHARE_REVOKED = "share_revoked", _("Share link revoked")
    ACCEPTED = "accepted", _("Accepted by customer")
