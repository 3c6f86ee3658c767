"""Every write of settlements: create, edit, delete (soft), transition, link/unlink tickets,
attachments and share links. Each function locks the settlement row, checks the actor's rights
in every project of the settlement inside the transaction, writes an event, and defers side
effects to on_commit."""

import logging
import secrets
from datetime import date
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, ServiceError, validate_model
from rbac.choices import ProjectPermission as P
from rbac.querysets import project_ids_with
from rbac.tokens import token_digest
from tickets.models import Project, Ticket

from . import events, files
from .choices import (
    ALLOWED_SETTLEMENT_TRANSITIONS,
    FREEZING_STATUSES,
    REVERSE_TRANSITIONS,
    AttachmentCategory,
    AttachmentState,
    SettlementStatus,
)
from .models import (
    Settlement,
    SettlementAcceptance,
    SettlementAttachment,
    SettlementCounter,
    SettlementProject,
    SettlementShareLink,
    SettlementTicket,
)

logger = logging.getLogger(__name__)

S = SettlementStatus

NOT_FOUND_MESSAGE = "Not found."
MISSING_IN_PROJECTS_MESSAGE = "You need {permission} in every project of the settlement; missing in: {projects}."
NOT_DRAFT_MESSAGE = "Settlement {number} is {status}; only a draft can be {what}."
INVALID_TRANSITION_MESSAGE = "Settlement {number} cannot go from {current} to {target}; allowed: {allowed}."
REVERSE_NEEDS_ADMIN_MESSAGE = ("Moving settlement {number} back from {current} to {target} needs the project admin "
                               "role in every project; missing in: {projects}.")
PROJECTS_REQUIRED_MESSAGE = "A settlement needs at least one project."
PERIOD_ORDER_MESSAGE = "The period must not end before it starts."
PROJECT_HAS_TICKETS_MESSAGE = ("Project {project} still has linked tickets in this settlement: {tickets}. "
                               "Unlink them first.")
TICKET_OUTSIDE_MESSAGE = "Ticket {ticket} belongs to project {project}, which is not part of settlement {number}."
ALREADY_LINKED_MESSAGE = "Ticket {ticket} is already linked to settlement {number}."
OVERLAP_MESSAGE = ("Ticket {ticket} is already in settlement {other} ({start} – {end}), whose period overlaps; "
                   "a ticket may only be in settlements with separate periods.")
NOT_LINKED_MESSAGE = "Ticket {ticket} is not linked to settlement {number}."
SETTLEMENT_FIELDS = ("name", "period_start", "period_end", "notes", "projects")


# --- Rights and locking -------------------------------------------------------------------

def _projects_lacking(actor, project_ids, permission: str) -> list[str]:
    """Keys of the given projects where `actor` lacks `permission`."""
    granted = project_ids_with(actor, permission)
    projects = Project.objects.filter(pk__in=list(project_ids))
    projects = projects.none() if granted is None else projects.exclude(pk__in=granted)
    return sorted(projects.values_list("key", flat=True))


def require_in_every_project(actor, project_ids, permission: str) -> None:
    lacking = _projects_lacking(actor, project_ids, permission)
    if lacking:
        raise PermissionDenied(MISSING_IN_PROJECTS_MESSAGE.format(permission=permission, projects=", ".join(lacking)),
                               code="missing_permission", extra={"permission": permission, "projects": lacking})


def _project_ids(settlement: Settlement) -> list[int]:
    return list(SettlementProject.objects.filter(settlement=settlement).values_list("project_id", flat=True))


def lock_settlement(settlement_id: int, *, actor, permission: str) -> Settlement:
    """Lock an active settlement the actor can read (else NotFound) and check `permission` in
    every one of its projects (else PermissionDenied). Concurrent writers queue here."""
    settlement = Settlement.objects.select_for_update().filter(pk=settlement_id, is_active=True).first()
    if settlement is None or not Settlement.objects.visible_to(actor, "read").filter(pk=settlement_id).exists():
        raise NotFound(NOT_FOUND_MESSAGE)
    require_in_every_project(actor, _project_ids(settlement), permission)
    return settlement


def _require_draft(settlement: Settlement, what: str) -> None:
    if settlement.status != S.DRAFT:
        raise Conflict(NOT_DRAFT_MESSAGE.format(number=settlement.display_number, status=settlement.status, what=what),
                       code="settlement_not_draft", extra={"status": settlement.status})


# --- Numbers ------------------------------------------------------------------------------

def _allocate_number(prefix: str) -> int:
    """Take the next number of the prefix's counter row, locked until the transaction ends."""
    counter = SettlementCounter.objects.select_for_update().filter(prefix=prefix).first()
    if counter is None:
        try:
            with transaction.atomic():
                SettlementCounter.objects.create(prefix=prefix)
        except IntegrityError:
            pass  # another transaction created it first; lock theirs
        counter = SettlementCounter.objects.select_for_update().get(prefix=prefix)
    number = counter.next_number
    counter.next_number = number + 1
    counter.save(update_fields=["next_number"])
    return number


# --- Create, edit, delete -----------------------------------------------------------------

def _check_period(period_start: date, period_end: date) -> None:
    if period_start > period_end:
        raise InvalidInput.for_field("period_end", PERIOD_ORDER_MESSAGE, code="period_order")


def _check_name(name: str) -> None:
    if not name or not name.strip() or len(name) > 200:
        raise InvalidInput.for_field("name", "A name of 1–200 characters is required.", code="invalid_name")


@transaction.atomic
def settlement_create(*, actor, name: str, period_start: date, period_end: date, projects,
                      notes: str = "") -> Settlement:
    project_ids = sorted({project.pk for project in projects})
    if not project_ids:
        raise InvalidInput.for_field("projects", PROJECTS_REQUIRED_MESSAGE, code="required")
    require_in_every_project(actor, project_ids, P.SETTLEMENTS_WRITE)
    _check_name(name)
    _check_period(period_start, period_end)
    prefix = settings.SETTLEMENT_NUMBER_PREFIX
    settlement = Settlement.objects.create(
        prefix=prefix, number=_allocate_number(prefix), name=name.strip(), period_start=period_start,
        period_end=period_end, notes=notes, created_by=actor,
    )
    SettlementProject.objects.bulk_create(SettlementProject(settlement=settlement, project_id=pk) for pk in project_ids)
    events.settlement_created(settlement, actor=actor)
    return settlement


def _overlapping_links(ticket_ids, *, period_start: date, period_end: date, exclude_settlement_id: int):
    return (SettlementTicket.objects
            .filter(ticket_id__in=ticket_ids, settlement__is_active=True, settlement__period_start__lte=period_end,
                    settlement__period_end__gte=period_start)
            .exclude(settlement_id=exclude_settlement_id)
            .select_related("settlement", "ticket__project").order_by("settlement__number"))


def _overlap_conflict(link) -> Conflict:
    other = link.settlement
    return Conflict(OVERLAP_MESSAGE.format(ticket=link.ticket.key, other=other.display_number,
                                           start=other.period_start, end=other.period_end),
                    code="overlapping_settlement", extra={"settlement": other.display_number})


@transaction.atomic
def settlement_update(*, actor, settlement: Settlement, changes: dict[str, Any]) -> Settlement:
    unknown = sorted(set(changes) - set(SETTLEMENT_FIELDS))
    if unknown:
        raise InvalidInput(f"These fields cannot be changed: {', '.join(unknown)}.", code="read_only")
    settlement = lock_settlement(settlement.pk, actor=actor, permission=P.SETTLEMENTS_WRITE)
    _require_draft(settlement, "edited")
    before = events.snapshot(settlement)
    if "name" in changes:
        _check_name(changes["name"])
        settlement.name = changes["name"].strip()
    settlement.period_start = changes.get("period_start", settlement.period_start)
    settlement.period_end = changes.get("period_end", settlement.period_end)
    settlement.notes = changes.get("notes", settlement.notes)
    _check_period(settlement.period_start, settlement.period_end)
    if "projects" in changes:
        _replace_projects(settlement, actor=actor, projects=changes["projects"])
    linked = list(SettlementTicket.objects.filter(settlement=settlement).values_list("ticket_id", flat=True))
    clash = _overlapping_links(linked, period_start=settlement.period_start, period_end=settlement.period_end,
                               exclude_settlement_id=settlement.pk).first()
    if clash is not None:
        raise _overlap_conflict(clash)
    settlement.save()
    after = events.snapshot(settlement)
    if after != before:
        events.settlement_updated(settlement, actor=actor, before=before, after=after)
    return settlement


def _replace_projects(settlement: Settlement, *, actor, projects) -> None:
    wanted = {project.pk for project in projects}
    if not wanted:
        raise InvalidInput.for_field("projects", PROJECTS_REQUIRED_MESSAGE, code="required")
    current = set(_project_ids(settlement))
    require_in_every_project(actor, wanted - current, P.SETTLEMENTS_WRITE)
    removed = current - wanted
    for project in Project.objects.filter(pk__in=removed).order_by("key"):
        keys = [link.ticket.key for link in SettlementTicket.objects.filter(settlement=settlement,
                                                                           ticket__project=project)
                .select_related("ticket__project").order_by("ticket__number")]
        if keys:
            raise Conflict(PROJECT_HAS_TICKETS_MESSAGE.format(project=project.key, tickets=", ".join(keys)),
                           code="project_has_linked_tickets", extra={"project": project.key, "tickets": keys})
    SettlementProject.objects.filter(settlement=settlement, project_id__in=removed).delete()
    SettlementProject.objects.bulk_create(SettlementProject(settlement=settlement, project_id=pk)
                                          for pk in sorted(wanted - current))


@transaction.atomic
def settlement_delete(*, actor, settlement: Settlement) -> None:
    """Soft delete: the row, its number and its history stay; it disappears from every view."""
    settlement = lock_settlement(settlement.pk, actor=actor, permission=P.SETTLEMENTS_DELETE)
    _require_draft(settlement, "deleted")
    settlement.is_active = False
    settlement.save(update_fields=["is_active", "updated_at"])
    events.settlement_deleted(settlement, actor=actor)


# --- Workflow -----------------------------------------------------------------------------

def _status_state(settlement: Settlement) -> dict[str, Any]:
    return {"status": settlement.status,
            "sent_at": settlement.sent_at.isoformat() if settlement.sent_at else None,
            "paid_at": settlement.paid_at.isoformat() if settlement.paid_at else None}


@transaction.atomic
def settlement_transition(*, actor, settlement: Settlement, status: str) -> Settlement:
    """draft→sent, sent→paid, sent→draft, paid→sent; nothing else. Going back needs project
    admin rights in every project. Tickets freeze on sent and unfreeze on draft."""
    settlement = lock_settlement(settlement.pk, actor=actor, permission=P.SETTLEMENTS_WRITE)
    current = settlement.status
    allowed = ALLOWED_SETTLEMENT_TRANSITIONS[current]
    if status not in allowed:
        raise Conflict(INVALID_TRANSITION_MESSAGE.format(number=settlement.display_number, current=current,
                                                         target=status, allowed=", ".join(sorted(allowed))),
                       code="invalid_transition", extra={"status": current, "allowed": sorted(allowed)})
    if (current, status) in REVERSE_TRANSITIONS:
        lacking = _projects_lacking(actor, _project_ids(settlement), P.PROJECT_ADMIN)
        if lacking:
            raise PermissionDenied(REVERSE_NEEDS_ADMIN_MESSAGE.format(
                number=settlement.display_number, current=current, target=status, projects=", ".join(lacking)),
                code="project_admin_required", extra={"projects": lacking})
    if current == S.DRAFT:
        # Freezing: take the linked tickets' row locks, so an edit that started before the send
        # finishes first and one that starts after it sees the frozen state.
        list(Ticket.objects.select_for_update().filter(settlement_links__settlement=settlement)
             .order_by("pk").values_list("pk", flat=True))
    before = _status_state(settlement)
    now = timezone.now()
    if status == S.SENT and current == S.DRAFT:
        settlement.sent_at = now
    elif status == S.PAID:
        settlement.paid_at = now
    elif status == S.SENT:  # paid → sent: keep sent_at
        settlement.paid_at = None
    else:  # sent → draft
        settlement.sent_at = settlement.paid_at = None
    settlement.status = status
    settlement.save(update_fields=["status", "sent_at", "paid_at", "updated_at"])
    events.settlement_transitioned(settlement, actor=actor, before=before, after=_status_state(settlement))
    return settlement


# --- Tickets ------------------------------------------------------------------------------

@transaction.atomic
def settlement_link_ticket(*, actor, settlement: Settlement, ticket: Ticket) -> SettlementTicket:
    settlement = lock_settlement(settlement.pk, actor=actor, permission=P.SETTLEMENTS_WRITE)
    _require_draft(settlement, "changed")
    # The ticket's row lock serialises links of the same ticket into different settlements.
    ticket = Ticket.objects.select_for_update(of=("self",)).select_related("project").get(pk=ticket.pk)
    if ticket.project_id not in _project_ids(settlement):
        raise InvalidInput.for_field("ticket", TICKET_OUTSIDE_MESSAGE.format(
            ticket=ticket.key, project=ticket.project.key, number=settlement.display_number),
            code="ticket_not_in_settlement_projects")
    if SettlementTicket.objects.filter(settlement=settlement, ticket=ticket).exists():
        raise Conflict(ALREADY_LINKED_MESSAGE.format(ticket=ticket.key, number=settlement.display_number),
                       code="already_linked")
    clash = _overlapping_links([ticket.pk], period_start=settlement.period_start, period_end=settlement.period_end,
                               exclude_settlement_id=settlement.pk).first()
    if clash is not None:
        raise _overlap_conflict(clash)
    link = SettlementTicket.objects.create(settlement=settlement, ticket=ticket, linked_by=actor)
    events.ticket_linked(settlement, actor=actor, ticket=ticket)
    return link


@transaction.atomic
def settlement_unlink_ticket(*, actor, settlement: Settlement, ticket: Ticket) -> None:
    settlement = lock_settlement(settlement.pk, actor=actor, permission=P.SETTLEMENTS_WRITE)
    _require_draft(settlement, "changed")
    deleted, _ = SettlementTicket.objects.filter(settlement=settlement, ticket=ticket).delete()
    if not deleted:
        raise NotFound(NOT_LINKED_MESSAGE.format(ticket=ticket.key, number=settlement.display_number),
                       code="not_linked")
    events.ticket_unlinked(settlement, actor=actor, ticket=ticket)


# --- Attachments --------------------------------------------------------------------------

ATTACHMENT_TOO_LARGE_MESSAGE = "A file may be at most {limit} MB; upload a smaller file."
TOO_MANY_ATTACHMENTS_MESSAGE = "Settlement {number} already has {limit} attachments, the most it may have."
EXTENSION_NOT_ALLOWED_MESSAGE = "Files of type {extension!r} are not accepted; allowed: {allowed}."
CONTENT_MISMATCH_MESSAGE = "The file's content does not match its extension {extension}."
EMPTY_FILE_MESSAGE = "The file is empty."
STORAGE_UNAVAILABLE_MESSAGE = "File storage is not available right now; nothing was saved. Try again later."


class StorageUnavailable(ServiceError):
    status_code = 503
    default_code = "storage_unavailable"


def _check_upload(uploaded) -> tuple[str, str, "files.FileType"]:
    limit = settings.SETTLEMENT_ATTACHMENT_MAX_BYTES
    if uploaded.size > limit:
        raise ServiceError(ATTACHMENT_TOO_LARGE_MESSAGE.format(limit=limit // (1024 * 1024)),
                           code="file_too_large", status_code=413)
    if not uploaded.size:
        raise InvalidInput.for_field("file", EMPTY_FILE_MESSAGE, code="empty")
    name = files.sanitize_filename(uploaded.name or "")
    extension = files.extension_of(name)
    if extension not in files.FILE_TYPES:
        raise InvalidInput.for_field("file", EXTENSION_NOT_ALLOWED_MESSAGE.format(
            extension=extension or "(none)", allowed=", ".join(files.ALLOWED_EXTENSIONS)), code="extension_not_allowed")
    uploaded.seek(0)
    head = uploaded.read(files.SNIFF_BYTES)
    uploaded.seek(0)
    if not files.content_matches(extension, head):
        raise InvalidInput.for_field("file", CONTENT_MISMATCH_MESSAGE.format(extension=extension),
                                     code="content_mismatch")
    return name, extension, files.FILE_TYPES[extension]


def _store(key: str, uploaded, content_type: str) -> str:
    try:
        return files.store_upload(key, uploaded, content_type)
    except (OSError, BotoCoreError, ClientError) as exc:
        raise StorageUnavailable(STORAGE_UNAVAILABLE_MESSAGE) from exc


def _remove_stored(name: str) -> None:
    try:
        default_storage.delete(name)
    except (OSError, BotoCoreError, ClientError):
        logger.exception("Could not remove stored object %s after a failed upload", name)


def attachment_upload(*, actor, settlement: Settlement, uploaded, category: str = AttachmentCategory.OTHER,
                      state: str = AttachmentState.DRAFT) -> SettlementAttachment:
    """Store the file, then record it. Allowed in any status (a signed protocol arrives after
    sending). The object is written first, outside the row lock, and removed again if the
    database part fails, so there are neither orphan objects nor rows without a file."""
    require_write_rights(settlement.pk, actor=actor)
    name, extension, file_type = _check_upload(uploaded)
    stored = _store(files.storage_key(settlement.pk, extension), uploaded, file_type.content_type)
    try:
        return _record_attachment(actor=actor, settlement=settlement, stored=stored, name=name,
                                  content_type=file_type.content_type, size=uploaded.size,
                                  category=category, state=state)
    except BaseException:
        _remove_stored(stored)
        raise


def require_write_rights(settlement_id: int, *, actor) -> None:
    """Refuse before any input is looked at (or any byte stored) when the actor may not change
    the settlement at all: 404 if unreadable, 403 without settlements:write in every project.
    The writing service checks again under the row lock."""
    if not Settlement.objects.visible_to(actor, "read").filter(pk=settlement_id).exists():
        raise NotFound(NOT_FOUND_MESSAGE)
    require_in_every_project(actor, SettlementProject.objects.filter(settlement_id=settlement_id)
                             .values_list("project_id", flat=True), P.SETTLEMENTS_WRITE)


@transaction.atomic
def _record_attachment(*, actor, settlement, stored, name, content_type, size, category, state):
    settlement = lock_settlement(settlement.pk, actor=actor, permission=P.SETTLEMENTS_WRITE)
    limit = settings.SETTLEMENT_ATTACHMENT_MAX_FILES
    # Counted under the settlement's row lock: of concurrent uploads exactly `limit` get in.
    if SettlementAttachment.objects.filter(settlement=settlement).count() >= limit:
        raise Conflict(TOO_MANY_ATTACHMENTS_MESSAGE.format(number=settlement.display_number, limit=limit),
                       code="too_many_attachments", extra={"limit": limit})
    attachment = SettlementAttachment(settlement=settlement, file=stored, original_name=name,
                                      content_type=content_type, size=size, category=category, state=state,
                                      uploaded_by=actor)
    validate_model(attachment, exclude=["file"])
    attachment.save()
    events.attachment_uploaded(settlement, actor=actor, attachment=attachment)
    return attachment


@transaction.atomic
def attachment_update(*, actor, attachment: SettlementAttachment, changes: dict[str, Any]) -> SettlementAttachment:
    """Category and state may change in any status."""
    unknown = sorted(set(changes) - {"category", "state"})
    if unknown:
        raise InvalidInput(f"These fields cannot be changed: {', '.join(unknown)}.", code="read_only")
    settlement = lock_settlement(attachment.settlement_id, actor=actor, permission=P.SETTLEMENTS_WRITE)
    attachment = SettlementAttachment.objects.select_for_update().get(pk=attachment.pk)
    before = events.attachment_snapshot(attachment)
    for name, value in changes.items():
        setattr(attachment, name, value)
    validate_model(attachment, exclude=["file"])
    attachment.save(update_fields=[*changes, "updated_at"])
    if events.attachment_snapshot(attachment) != before:
        events.attachment_changed(settlement, actor=actor, before=before, attachment=attachment)
    return attachment


@transaction.atomic
def attachment_delete(*, actor, attachment: SettlementAttachment) -> None:
    """Draft only; needs settlements:delete in every project. The object goes after commit."""
    settlement = lock_settlement(attachment.settlement_id, actor=actor, permission=P.SETTLEMENTS_DELETE)
    _require_draft(settlement, "changed")
    attachment = SettlementAttachment.objects.select_for_update().get(pk=attachment.pk)
    before = events.attachment_snapshot(attachment)
    stored = attachment.file.name
    attachment.delete()
    events.attachment_deleted(settlement, actor=actor, before=before)
    transaction.on_commit(lambda: _remove_stored(stored))


# --- Share links and acceptance -----------------------------------------------------------

SHARE_NEEDS_SENT_MESSAGE = "Only a sent or paid settlement can be shared; {number} is {status}."
ALREADY_ACCEPTED_MESSAGE = "Settlement {number} was already accepted by {name} on {when}."


@transaction.atomic
def share_link_create(*, actor, settlement: Settlement, expires_at=None) -> tuple[SettlementShareLink, str]:
    """A capability link for the customer page; returns the row and the token (shown once)."""
    settlement = lock_settlement(settlement.pk, actor=actor, permission=P.SETTLEMENTS_WRITE)
    if settlement.status not in FREEZING_STATUSES:
        raise Conflict(SHARE_NEEDS_SENT_MESSAGE.format(number=settlement.display_number, status=settlement.status),
                       code="settlement_not_sent")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput.for_field("expires_at", "The expiry must be in the future.", code="expired")
    token = secrets.token_urlsafe(32)
    link = SettlementShareLink.objects.create(settlement=settlement, digest=token_digest(token), prefix=token[:8],
                                              created_by=actor, expires_at=expires_at)
    events.share_link_created(settlement, actor=actor, link=link)
    return link, token


@transaction.atomic
def share_link_revoke(*, actor, link: SettlementShareLink) -> SettlementShareLink:
    settlement = lock_settlement(link.settlement_id, actor=actor, permission=P.SETTLEMENTS_WRITE)
    link = SettlementShareLink.objects.select_for_update().get(pk=link.pk)
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
        events.share_link_revoked(settlement, actor=actor, link=link)
    return link


def shared_settlement(token: str) -> tuple[Settlement, SettlementShareLink]:
    """The settlement behind a customer token; NotFound for unknown, revoked, expired or draft."""
    link = (SettlementShareLink.objects.select_related("settlement")
            .filter(digest=token_digest(token or ""), revoked_at__isnull=True, settlement__is_active=True,
                    settlement__status__in=FREEZING_STATUSES).first())
    if link is None or (link.expires_at is not None and link.expires_at <= timezone.now()):
        raise NotFound(NOT_FOUND_MESSAGE)
    return link.settlement, link


@transaction.atomic
def settlement_accept(*, token: str, name: str) -> SettlementAcceptance:
    """The customer's confirmation through a share link: name and timestamp, logged."""
    settlement, link = shared_settlement(token)
    settlement = Settlement.objects.select_for_update().get(pk=settlement.pk)
    clean_name = (name or "").strip()
    if not clean_name or len(clean_name) > 200 or "\x00" in clean_name:
        raise InvalidInput.for_field("name", "Give your name (1–200 characters).", code="invalid_name")
    existing = SettlementAcceptance.objects.filter(settlement=settlement).first()
    if existing is not None:
        raise Conflict(ALREADY_ACCEPTED_MESSAGE.format(number=settlement.display_number, name=existing.accepted_by_name,
                                                       when=existing.accepted_at.date()), code="already_accepted")
    acceptance = SettlementAcceptance.objects.create(settlement=settlement, share_link=link,
                                                     accepted_by_name=clean_name)
    events.settlement_accepted(settlement, acceptance=acceptance)
    return acceptance
