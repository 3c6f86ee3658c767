"""Dashboard pages of settlements (under /dashboard/): the global and per-project lists, create,
edit and delete, and the detail page with its HTMX sections — linked tickets with the ticket
autocomplete, attachments with upload, preview and download, status buttons, share links and the
events timeline.

Views stay thin: they find settlements through `Settlement.objects.visible_to` (invisible is a
404, like missing), write only through settlements.services, and leave refusals to core.pages
(a page, or for HTMX a fragment in #messages, with the service's status and code). HTMX actions
answer with the section they changed plus the events timeline, swapped out of band; without
JavaScript the same forms post normally and are redirected back to the detail page."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django_htmx.http import HttpResponseClientRedirect

from billing.selectors import settlement_totals
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, ServiceError
from core.pages import add_service_errors, handles_refusals, invalid_form_response, paginate, post_action, request_value
from core.uploads import content_length_too_large, upload_too_large
from tickets.models import Ticket

from . import files, selectors, services
from .api.downloads import attachment_response, served_over_asgi
from .choices import FREEZING_STATUSES, AttachmentCategory, AttachmentState, SettlementStatus
from .forms import (
    AttachmentChangeForm,
    AttachmentUploadForm,
    LinkTicketForm,
    SettlementFilterForm,
    SettlementForm,
    ShareLinkForm,
    TransitionForm,
)
from .models import Settlement, SettlementAcceptance, SettlementAttachment, SettlementProject, SettlementShareLink

S = SettlementStatus

PAGE_SIZE = 25
LIST_TEMPLATE = "settlements/list.html"
FORM_TEMPLATE = "settlements/form.html"
DETAIL_TEMPLATE = "settlements/detail.html"
SECTION_RESPONSE_TEMPLATE = "settlements/partials/section_response.html"
SEARCH_RESULTS_TEMPLATE = "settlements/partials/search_results.html"
PREVIEW_TEMPLATE = "settlements/partials/attachment_preview.html"

NO_WRITABLE_PROJECT_MESSAGE = gettext_lazy("You need the settlements:write permission in at least one project "
                                           "to create a settlement.")
UNKNOWN_STATUS_MESSAGE = gettext_lazy("Choose one of the statuses draft, sent or paid.")
INVALID_FIELDS_MESSAGE = gettext_lazy("Check the highlighted fields.")

# The status buttons: label, confirmation question and style per transition. Going back to draft
# unfreezes the tickets, which is what the question must say before anyone confirms it.
TRANSITION_BUTTONS = {
    (S.DRAFT, S.SENT): (gettext_lazy("Send"), gettext_lazy(
        "Send this settlement? Its tickets will be frozen: their time, expenses and fields cannot change "
        "until it returns to draft."), "primary"),
    (S.SENT, S.PAID): (gettext_lazy("Mark as paid"), gettext_lazy("Mark this settlement as paid?"), "primary"),
    (S.SENT, S.DRAFT): (gettext_lazy("Revert to draft"), gettext_lazy(
        "Revert this settlement to draft? Its tickets will unfreeze and can be edited again, and the sent "
        "date is cleared."), ""),
    (S.PAID, S.SENT): (gettext_lazy("Back to sent"), gettext_lazy(
        "Move this settlement back to sent? The payment date is cleared; the tickets stay frozen."), ""),
}

# Sections of the detail page an HTMX action re-renders, and the element each one replaces.
SECTION_TEMPLATES = {
    "tickets": "settlements/partials/tickets.html",
    "attachments": "settlements/partials/attachments.html",
    "share_links": "settlements/partials/share_links.html",
}
SECTION_IDS = {"tickets": "linked-tickets", "attachments": "attachments", "share_links": "share-links"}


# --- Lookups: invisible is a 404, like missing --------------------------------------------

def _visible_settlement(user, pk: int) -> Settlement:
    settlement = (Settlement.objects.visible_to(user, "read").select_related("created_by", "acceptance")
                  .filter(pk=pk).first())
    if settlement is None:
        raise NotFound(services.NOT_FOUND_MESSAGE)
    return settlement


def _readable_project(user, key: str):
    project = selectors.projects_with_settlement_read(user).filter(key=key.upper()).first()
    if project is None:
        raise NotFound(services.NOT_FOUND_MESSAGE)
    return project


def _readable_ticket(user, reference) -> Ticket:
    ticket = Ticket.objects.visible_to(user, "read").by_reference(reference).select_related("project").first()
    if ticket is None:
        raise NotFound(services.NOT_FOUND_MESSAGE)
    return ticket


def _attachment_of(settlement: Settlement, attachment_id: int) -> SettlementAttachment:
    attachment = SettlementAttachment.objects.filter(pk=attachment_id, settlement=settlement).first()
    if attachment is None:
        raise NotFound(services.NOT_FOUND_MESSAGE)
    return attachment


def _share_link_of(settlement: Settlement, link_id: int) -> SettlementShareLink:
    link = SettlementShareLink.objects.filter(pk=link_id, settlement=settlement).first()
    if link is None:
        raise NotFound(services.NOT_FOUND_MESSAGE)
    return link


def _acceptance_of(settlement: Settlement) -> SettlementAcceptance | None:
    try:
        return settlement.acceptance
    except SettlementAcceptance.DoesNotExist:
        return None


# --- Lists --------------------------------------------------------------------------------

def _filtered(settlements, form: SettlementFilterForm):
    """Apply the valid filters; an invalid one is reported on the form and ignored."""
    if not form.is_bound:
        return settlements
    form.is_valid()
    data = form.cleaned_data
    if data.get("projects"):
        settlements = settlements.filter(pk__in=SettlementProject.objects.filter(project__in=data["projects"])
                                         .values("settlement_id"))
    if data.get("status"):
        settlements = settlements.filter(status=data["status"])
    # Periods that overlap the range: ending on or after its start, starting on or before its end.
    if data.get("date_from"):
        settlements = settlements.filter(period_end__gte=data["date_from"])
    if data.get("date_to"):
        settlements = settlements.filter(period_start__lte=data["date_to"])
    return settlements


def _attach_totals(rows: list[Settlement], user) -> None:
    """Totals for the page's rows only, of the tickets `user` may read: two queries, whatever
    the page size."""
    totals = settlement_totals((settlement.pk for settlement in rows), readable_by=user)
    for settlement in rows:
        total = totals[settlement.pk].total
        settlement.total_minutes = total.minutes
        settlement.total_amounts = selectors.sorted_amounts(total)


@login_required
@handles_refusals
def settlement_list(request, key: str | None = None):
    """Every settlement the user can read (or those of one project), filtered and paginated."""
    project = _readable_project(request.user, key) if key else None
    form = SettlementFilterForm(request.GET or None, user=request.user, with_projects=project is None)
    settlements = selectors.settlements_for_list(request.user).order_by("-number")
    if project is not None:
        settlements = settlements.filter(pk__in=SettlementProject.objects.filter(project=project)
                                         .values("settlement_id"))
    page = paginate(request, _filtered(settlements, form), per_page=PAGE_SIZE)
    page.object_list = list(page.object_list)
    _attach_totals(page.object_list, request.user)
    return render(request, LIST_TEMPLATE, {
        "form": form, "page_obj": page, "project": project,
        "can_create": selectors.projects_with_settlement_write(request.user).exists(),
    })


# --- Create, edit, delete -----------------------------------------------------------------

def _initial_projects(request) -> dict:
    """`?project=MNX` (from a project's list) preselects that project."""
    key = request.GET.get("project")
    if not key:
        return {}
    return {"projects": list(selectors.projects_with_settlement_write(request.user).filter(key=key))}


@login_required
@handles_refusals
def settlement_create(request):
    form = SettlementForm(request.POST if request.method == "POST" else None, user=request.user,
                          initial=_initial_projects(request))
    if not form.fields["projects"].queryset.exists():
        raise PermissionDenied(str(NO_WRITABLE_PROJECT_MESSAGE), code="missing_permission")
    context = {"form": form, "settlement": None}
    if request.method != "POST":
        return render(request, FORM_TEMPLATE, context)
    if form.is_valid():
        try:
            settlement = services.settlement_create(actor=request.user, **form.cleaned_data)
        except InvalidInput as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Settlement %(number)s created.") % {"number": settlement.display_number})
            return redirect("settlements:detail", pk=settlement.pk)
    return invalid_form_response(request, FORM_TEMPLATE, context)


def _form_initial(settlement: Settlement) -> dict:
    return {"name": settlement.name, "period_start": settlement.period_start, "period_end": settlement.period_end,
            "projects": list(settlement.projects.all()), "notes": settlement.notes}


@login_required
@handles_refusals
def settlement_edit(request, pk: int):
    settlement = _visible_settlement(request.user, pk)
    # A reader who may not change it gets 403 before seeing a form (404 if unreadable).
    services.require_write_rights(settlement.pk, actor=request.user)
    form = SettlementForm(request.POST if request.method == "POST" else None, user=request.user,
                          initial=_form_initial(settlement))
    context = {"form": form, "settlement": settlement}
    if request.method != "POST":
        return render(request, FORM_TEMPLATE, context)
    if form.is_valid():
        try:
            services.settlement_update(actor=request.user, settlement=settlement, changes=form.cleaned_data)
        except InvalidInput as error:
            add_service_errors(form, error)
        except Conflict as error:
            # Not a draft any more, a project with linked tickets removed, an overlapping period:
            # the form stays filled in, with the reason on top and the conflict's status.
            form.add_error(None, error.message)
            response = render(request, FORM_TEMPLATE, context, status=error.status_code)
            response["X-Error-Code"] = error.code
            return response
        else:
            messages.success(request, _("Settlement %(number)s saved.") % {"number": settlement.display_number})
            return redirect("settlements:detail", pk=settlement.pk)
    return invalid_form_response(request, FORM_TEMPLATE, context)


@post_action
def settlement_delete(request, pk: int):
    settlement = _visible_settlement(request.user, pk)
    services.settlement_delete(actor=request.user, settlement=settlement)
    messages.success(request, _("Settlement %(number)s deleted.") % {"number": settlement.display_number})
    return redirect("settlements:list")


# --- Detail page and its sections ---------------------------------------------------------

def _transition_buttons(settlement: Settlement, rights: selectors.SettlementRights) -> list[dict]:
    """The buttons in TRANSITION_BUTTONS order: the usual next step first."""
    allowed = set(selectors.transitions_for(settlement, rights))
    return [{"status": target, "label": label, "confirm": confirm, "style": style}
            for (current, target), (label, confirm, style) in TRANSITION_BUTTONS.items()
            if current == settlement.status and target in allowed]


def _tickets_context(request, settlement: Settlement, rights) -> dict:
    return {"linked": selectors.linked_tickets_with_totals(settlement=settlement, user=request.user),
            "can_change_tickets": rights.write and settlement.status == S.DRAFT}


def _preview_kind(attachment: SettlementAttachment) -> str | None:
    file_type = files.FILE_TYPES.get(files.extension_of(attachment.original_name))
    if not (file_type and file_type.previewable):
        return None
    return "pdf" if file_type.content_type == "application/pdf" else "image"


def _attachments_context(request, settlement: Settlement, rights) -> dict:
    attachments = list(selectors.settlement_attachments(settlement))
    for attachment in attachments:
        attachment.preview_kind = _preview_kind(attachment)
    return {
        "attachments": attachments,
        # Uploads are allowed in any status (a signed protocol arrives after sending).
        "upload_form": AttachmentUploadForm() if rights.write else None,
        "can_change_attachments": rights.write,
        "can_delete_attachments": rights.delete and settlement.status == S.DRAFT,
        "attachment_categories": AttachmentCategory.choices, "attachment_states": AttachmentState.choices,
        "max_attachments": settings.SETTLEMENT_ATTACHMENT_MAX_FILES,
    }


def _share_links_context(request, settlement: Settlement, rights) -> dict:
    now = timezone.now()
    links = list(settlement.share_links.select_related("created_by"))
    for link in links:
        link.is_expired = link.expires_at is not None and link.expires_at <= now
    shareable = rights.write and settlement.status in FREEZING_STATUSES
    return {"share_links": links, "share_form": ShareLinkForm() if shareable else None,
            "can_revoke_links": rights.write}


# Names of the fields an "updated" event may list, in the page's language.
EVENT_FIELD_LABELS = {"name": gettext_lazy("name"), "period_start": gettext_lazy("period start"),
                      "period_end": gettext_lazy("period end"), "notes": gettext_lazy("notes"),
                      "projects": gettext_lazy("projects")}


def _status_label(value) -> str:
    return S(value).label if value in S.values else str(value or "")


def _ticket_hidden(event, readable_keys: set[str]) -> bool:
    """Link events of tickets whose project the reader cannot read keep their key to themselves."""
    record = (event.after if event.kind == "ticket_linked" else event.before) or {}
    key = str(record.get("ticket", ""))
    return key.rpartition("-")[0] not in readable_keys


def _describe(event, readable_keys: set[str]) -> None:
    """Readable what-changed for the timeline, from the event's before/after records."""
    before, after = event.before or {}, event.after or {}
    if event.kind in ("ticket_linked", "ticket_unlinked"):
        event.ticket_hidden = _ticket_hidden(event, readable_keys)
    elif event.kind == "transitioned":
        event.status_from, event.status_to = _status_label(before.get("status")), _status_label(after.get("status"))
    elif event.kind == "updated":
        event.changed_fields = [str(label) for key, label in EVENT_FIELD_LABELS.items()
                                if before.get(key) != after.get(key)]


def _events_context(settlement: Settlement, projects) -> dict:
    readable_keys = {project.key for project in projects if project.tickets_readable}
    events = list(selectors.settlement_events(settlement))
    for event in events:
        _describe(event, readable_keys)
    return {"events": events}


SECTION_CONTEXTS = {"tickets": _tickets_context, "attachments": _attachments_context,
                    "share_links": _share_links_context}


def _detail_context(request, settlement: Settlement, **extra) -> dict:
    """Everything the detail page shows; a fixed number of queries whatever the number of linked
    tickets, attachments, links or events."""
    projects, rights = selectors.settlement_projects_and_rights(request.user, settlement)
    context = {"settlement": settlement, "projects": projects, "rights": rights,
               "acceptance": _acceptance_of(settlement),
               "transitions": _transition_buttons(settlement, rights),
               "can_edit": rights.write and settlement.status == S.DRAFT,
               "can_delete": rights.delete and settlement.status == S.DRAFT}
    for section_context in SECTION_CONTEXTS.values():
        context.update(section_context(request, settlement, rights))
    context.update(_events_context(settlement, projects))
    context.update(extra)
    return context


@login_required
@handles_refusals
def settlement_detail(request, pk: int):
    settlement = _visible_settlement(request.user, pk)
    return render(request, DETAIL_TEMPLATE, _detail_context(request, settlement))


def _section_response(request, settlement: Settlement, section: str, *, status: int = 200, error_code: str = "",
                      redirect_plain: bool = True, **extra):
    """The answer to an action on one section of the detail page.

    HTMX: the section (replacing its element) plus the events timeline and a cleared message
    area, out of band. Without HTMX: back to the page (post/redirect/get), or — for errors, and
    for answers that must not be lost on a redirect such as a new share link — the whole page."""
    if request.htmx:
        projects, rights = selectors.settlement_projects_and_rights(request.user, settlement)
        context = {"settlement": settlement, "rights": rights, "section_template": SECTION_TEMPLATES[section],
                   **SECTION_CONTEXTS[section](request, settlement, rights),
                   **_events_context(settlement, projects), **extra}
        response = render(request, SECTION_RESPONSE_TEMPLATE, context, status=status)
    elif status < 300 and redirect_plain:
        return redirect(reverse("settlements:detail", args=[settlement.pk]) + "#" + SECTION_IDS[section])
    else:
        response = render(request, DETAIL_TEMPLATE, _detail_context(request, settlement, **extra), status=status)
    if error_code:
        response["X-Error-Code"] = error_code
    return response


# --- Status -------------------------------------------------------------------------------

@post_action
def settlement_transition(request, pk: int):
    settlement = _visible_settlement(request.user, pk)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        raise InvalidInput.for_field("status", str(UNKNOWN_STATUS_MESSAGE))
    settlement = services.settlement_transition(actor=request.user, settlement=settlement,
                                                status=form.cleaned_data["status"])
    messages.success(request, _("Settlement %(number)s is now %(status)s.") % {
        "number": settlement.display_number, "status": settlement.get_status_display()})
    url = reverse("settlements:detail", args=[settlement.pk])
    # The status changes most of the page (buttons, freezing, sharing): load it anew.
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- Tickets ------------------------------------------------------------------------------

def _search_results(request, settlement: Settlement, query: str) -> dict:
    query = (query or "").strip()
    results = (selectors.search_linkable_tickets(settlement=settlement, user=request.user, query=query)
               if query else [])
    return {"settlement": settlement, "query": query, "results": results}


@login_required
@handles_refusals
def ticket_search(request, pk: int):
    """The autocomplete's results: readable, not yet linked tickets of the settlement's projects
    matching a key (MNX-12), a number (12) or a title fragment."""
    settlement = _visible_settlement(request.user, pk)
    return render(request, SEARCH_RESULTS_TEMPLATE, _search_results(request, settlement, request.GET.get("q", "")))


@post_action
def ticket_link(request, pk: int):
    settlement = _visible_settlement(request.user, pk)
    form = LinkTicketForm(request.POST)
    if not form.is_valid():
        raise InvalidInput.for_field("ticket", _("Give a ticket key (MNX-12) or id."), code="required")
    ticket = _readable_ticket(request.user, form.cleaned_data["ticket"])
    services.settlement_link_ticket(actor=request.user, settlement=settlement, ticket=ticket)
    extra = {}
    if "q" in request.POST:
        # The autocomplete sent its query along: refresh its results without the linked ticket.
        extra = {"search": _search_results(request, settlement, request_value(request, "q"))}
    return _section_response(request, settlement, "tickets", **extra)


@post_action
def ticket_unlink(request, pk: int, ticket_id: int):
    settlement = _visible_settlement(request.user, pk)
    ticket = _readable_ticket(request.user, ticket_id)
    services.settlement_unlink_ticket(actor=request.user, settlement=settlement, ticket=ticket)
    return _section_response(request, settlement, "tickets")


# --- Attachments --------------------------------------------------------------------------

def _too_large() -> ServiceError:
    limit = settings.SETTLEMENT_ATTACHMENT_MAX_BYTES // (1024 * 1024)
    return ServiceError(services.ATTACHMENT_TOO_LARGE_MESSAGE.format(limit=limit), code="file_too_large",
                        status_code=413)


def _csrf_refusal(request):
    """The CSRF check attachment_upload postponed: None when the token is right, else the 403."""
    return CsrfViewMiddleware(lambda _request: None).process_view(request, None, (), {})


@csrf_exempt  # checked inside, after the rights: the middleware would parse the whole body first
@post_action
def attachment_upload(request, pk: int):
    """As the API does: rights and the declared size are checked before a byte of the body is
    read; the body then streams through the size-limited upload handler."""
    settlement = _visible_settlement(request.user, pk)
    services.require_write_rights(settlement.pk, actor=request.user)
    if content_length_too_large(request):
        raise _too_large()
    refusal = _csrf_refusal(request)
    if refusal is not None:
        return refusal
    form = AttachmentUploadForm(request.POST, request.FILES)
    valid = form.is_valid()
    if upload_too_large(request):
        raise _too_large()
    if not valid:
        return _section_response(request, settlement, "attachments", status=400, error_code="invalid",
                                 upload_form=form)
    try:
        services.attachment_upload(actor=request.user, settlement=settlement, uploaded=form.cleaned_data["file"],
                                   category=form.cleaned_data["category"], state=form.cleaned_data["state"])
    except InvalidInput as error:
        add_service_errors(form, error)
        return _section_response(request, settlement, "attachments", status=error.status_code,
                                 error_code=error.code, upload_form=form)
    return _section_response(request, settlement, "attachments")


@post_action
def attachment_update(request, pk: int, attachment_id: int):
    settlement = _visible_settlement(request.user, pk)
    attachment = _attachment_of(settlement, attachment_id)
    form = AttachmentChangeForm(request.POST)
    if not form.is_valid():
        raise InvalidInput(str(INVALID_FIELDS_MESSAGE), errors=form.errors.get_json_data())
    services.attachment_update(actor=request.user, attachment=attachment, changes=form.cleaned_data)
    return _section_response(request, settlement, "attachments")


@post_action
def attachment_delete(request, pk: int, attachment_id: int):
    settlement = _visible_settlement(request.user, pk)
    services.attachment_delete(actor=request.user, attachment=_attachment_of(settlement, attachment_id))
    return _section_response(request, settlement, "attachments")


@xframe_options_sameorigin  # the detail page previews PDFs in an iframe
@login_required
@handles_refusals
def attachment_download(request, pk: int, attachment_id: int):
    """Streams the file: inline with `?inline=1` for PDFs and images, a download otherwise."""
    attachment = _attachment_of(_visible_settlement(request.user, pk), attachment_id)
    return attachment_response(attachment, inline=request.GET.get("inline") in ("1", "true"),
                               asgi=served_over_asgi(request))


@login_required
@handles_refusals
def attachment_preview(request, pk: int, attachment_id: int):
    """The preview element (iframe for PDF, img for images), loaded only when asked for."""
    settlement = _visible_settlement(request.user, pk)
    attachment = _attachment_of(settlement, attachment_id)
    attachment.preview_kind = _preview_kind(attachment)
    return render(request, PREVIEW_TEMPLATE, {"settlement": settlement, "attachment": attachment})


# --- Share links --------------------------------------------------------------------------

@never_cache  # the answer holds the token, shown this once
@post_action
def share_link_create(request, pk: int):
    settlement = _visible_settlement(request.user, pk)
    form = ShareLinkForm(request.POST)
    if form.is_valid():
        try:
            link, token = services.share_link_create(actor=request.user, settlement=settlement,
                                                     expires_at=form.cleaned_data["expires_at"])
        except InvalidInput as error:
            add_service_errors(form, error)
            return _section_response(request, settlement, "share_links", status=400, error_code=error.code,
                                     share_form=form)
        # Only the token's digest is stored: this answer is the one place the URL appears.
        url = request.build_absolute_uri(reverse("customer:settlement", kwargs={"token": token}))
        return _section_response(request, settlement, "share_links", status=201, redirect_plain=False,
                                 new_share_link=link, new_share_url=url)
    return _section_response(request, settlement, "share_links", status=400, error_code="invalid", share_form=form)


@post_action
def share_link_revoke(request, pk: int, link_id: int):
    settlement = _visible_settlement(request.user, pk)
    services.share_link_revoke(actor=request.user, link=_share_link_of(settlement, link_id))
    return _section_response(request, settlement, "share_links")
