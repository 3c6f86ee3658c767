"""Append-only settlement events, one function per event type. Called inside the service's
transaction, so an event exists exactly when its change does."""

from typing import Any

from .choices import EventKind
from .models import SettlementEvent


def snapshot(settlement) -> dict[str, Any]:
    """The editable state of a settlement, for before/after records."""
    return {
        "name": settlement.name,
        "period_start": settlement.period_start.isoformat(),
        "period_end": settlement.period_end.isoformat(),
        "notes": settlement.notes,
        "projects": sorted(settlement.projects.values_list("key", flat=True)),
    }


def _record(settlement, kind: str, *, actor=None, actor_label: str = "", before=None, after=None) -> SettlementEvent:
    return SettlementEvent.objects.create(settlement=settlement, kind=kind, actor=actor, actor_label=actor_label,
                                          before=before, after=after)


def settlement_created(settlement, *, actor):
    return _record(settlement, EventKind.CREATED, actor=actor, after=snapshot(settlement))


def settlement_updated(settlement, *, actor, before: dict, after: dict):
    return _record(settlement, EventKind.UPDATED, actor=actor, before=before, after=after)


def settlement_transitioned(settlement, *, actor, before: dict, after: dict):
    return _record(settlement, EventKind.TRANSITIONED, actor=actor, before=before, after=after)


def settlement_deleted(settlement, *, actor):
    return _record(settlement, EventKind.DELETED, actor=actor, before={"is_active": True}, after={"is_active": False})


def ticket_linked(settlement, *, actor, ticket):
    return _record(settlement, EventKind.TICKET_LINKED, actor=actor, after={"ticket": ticket.key})


def ticket_unlinked(settlement, *, actor, ticket):
    return _record(settlement, EventKind.TICKET_UNLINKED, actor=actor, before={"ticket": ticket.key})


def _attachment_state(attachment) -> dict[str, Any]:
    return {"id": attachment.pk, "name": attachment.original_name, "category": attachment.category,
            "state": attachment.state, "size": attachment.size}


def attachment_uploaded(settlement, *, actor, attachment):
    return _record(settlement, EventKind.ATTACHMENT_UPLOADED, actor=actor, after=_attachment_state(attachment))


def attachment_changed(settlement, *, actor, before: dict, attachment):
    return _record(settlement, EventKind.ATTACHMENT_CHANGED, actor=actor, before=before,
                   after=_attachment_state(attachment))


def attachment_deleted(settlement, *, actor, before: dict):
    return _record(settlement, EventKind.ATTACHMENT_DELETED, actor=actor, before=before)


def share_link_created(settlement, *, actor, link):
    return _record(settlement, EventKind.SHARED, actor=actor,
                   after={"link": link.pk, "prefix": link.prefix,
                          "expires_at": link.expires_at.isoformat() if link.expires_at else None})


def share_link_revoked(settlement, *, actor, link):
    return _record(settlement, EventKind.SHARE_REVOKED, actor=actor, before={"link": link.pk, "prefix": link.prefix})


def settlement_accepted(settlement, *, acceptance):
    return _record(settlement, EventKind.ACCEPTED, actor_label=f"customer: {acceptance.accepted_by_name}",
                   after={"name": acceptance.accepted_by_name, "accepted_at": acceptance.accepted_at.isoformat(),
                          "link": acceptance.share_link_id})


attachment_snapshot = _attachment_state
