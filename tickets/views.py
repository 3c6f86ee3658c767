"""Dashboard pages of projects, tickets and the Kanban board (under /dashboard/): "My work",
project list and detail with budgets and burn-up charts, the board with its status changes, the
ticket list, detail (time entries, expenses, lock banner, settlements section), create and edit.

Views stay thin: every read starts from `visible_to` (an invisible object is a 404), every write
calls a tickets service (whose refusals keep their status through `handles_refusals`), and
settlement data arrives only through the ticket payload extensions, so this module never imports
billing or settlements. HTMX requests get the changed fragment; plain form posts are redirected."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import InvalidInput, PermissionDenied, ServiceError
from core.pages import add_service_errors, handles_refusals, invalid_form_response, paginate, post_action, request_value
from rbac.choices import ProjectPermission as P
from rbac.querysets import project_permissions, require_project_permission

from . import selectors, services
from .choices import TicketStatus
from .extensions import annotate_tickets, extend_ticket_payload
from .filtersets import TicketFilter
from .forms import ExpenseForm, TicketFilterForm, TicketForm, TicketStatusForm, TimeEntryForm
from .guards import EditAction, EditAttempt, check_edit
from .models import Expense, Project, Ticket, TimeEntry

NO_WRITABLE_PROJECT_MESSAGE = gettext_lazy("You may not create tickets in any active project.")
UNKNOWN_STATUS_MESSAGE = gettext_lazy("Choose one of the board's statuses.")
# Settlement statuses in the payload extension are the settlements app's vocabulary (SPEC §3):
# a sent or paid settlement is the one that freezes a ticket, so the banner names that one.
FREEZING_SETTLEMENT_STATUSES = ("sent", "paid")
SETTLEMENT_STATUS_LABELS = {"draft": gettext_lazy("draft"), "sent": gettext_lazy("sent"), "paid": gettext_lazy("paid")}
# Expenses default to the project's budget currency, else the product's default client currency.
DEFAULT_EXPENSE_CURRENCY = "NOK"
TIME_PREFIX, EXPENSE_PREFIX = "time", "expense"

DETAIL_TEMPLATE = "tickets/ticket_detail.html"
FORM_TEMPLATE = "tickets/ticket_form.html"


# --- Lookups ----------------------------------------------------------------------------------

def _visible_project(user, key: str) -> Project:
    return get_object_or_404(Project.objects.visible_to(user, "read"), key=key.upper())


def _visible_ticket(user, key: str, *, for_detail: bool = False) -> Ticket:
    tickets = Ticket.objects.visible_to(user, "read").select_related("project", "assignee", "created_by")
    if for_detail:
        tickets = annotate_tickets(tickets.with_list_columns(), user)
    return get_object_or_404(tickets.by_key(key))


def _edit_refusal(ticket: Ticket, user) -> ServiceError | None:
    """What the edit guards would answer to an edit of this ticket now (None: allowed). Guards
    only read, so asking before showing a form is safe; the service asks again when it writes."""
    try:
        check_edit(EditAttempt(EditAction.TICKET_UPDATE, ticket, user,
                               changed_fields=frozenset(services.TICKET_FIELDS) - {"status"}))
    except ServiceError as error:
        return error
    return None


def _safe_next(request, default: str) -> str:
    target = request_value(request, "next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


# --- My work and projects ---------------------------------------------------------------------

@login_required
def dashboard_home(request):
    user = request.user
    return render(request, "tickets/dashboard_home.html", {
        "open_tickets": selectors.my_open_tickets(user),
        "budgets": selectors.projects_needing_attention(user),
        "time_entries": selectors.my_recent_time_entries(user),
    })


@login_required
def project_list(request):
    page_obj = paginate(request, Project.objects.visible_to(request.user, "read").order_by("key"))
    budgets = selectors.project_budgets(page_obj.object_list)
    return render(request, "tickets/project_list.html", {
        "page_obj": page_obj,
        "rows": [budgets[project.pk] for project in page_obj.object_list],
    })


@login_required
def project_detail(request, key: str):
    project = _visible_project(request.user, key)
    permissions = project_permissions(request.user, project.pk)
    burnups = selectors.project_burnups(project)
    return render(request, "tickets/project_detail.html", {
        "project": project,
        "budget": selectors.project_budgets([project])[project.pk],
        "hours_chart": burnups.hours and selectors.BurnupChart.of(burnups.hours),
        "money_chart": burnups.money and selectors.BurnupChart.of(burnups.money),
        "status_counts": selectors.ticket_status_counts(request.user, project),
        "can_write": P.TICKETS_WRITE in permissions and project.is_active,
        "can_read_settlements": P.SETTLEMENTS_READ in permissions,
    })


def _board_context(request, project: Project) -> dict:
    return {
        "project": project,
        "columns": selectors.board_columns(request.user, project),
        "statuses": TicketStatus.choices,
        "can_write": P.TICKETS_WRITE in project_permissions(request.user, project.pk),
    }


@login_required
def project_board(request, key: str):
    project = _visible_project(request.user, key)
    return render(request, "tickets/project_board.html", _board_context(request, project))


@post_action
def ticket_status(request, key: str):
    """Move a ticket to another column: the board's drag-and-drop (kanban.js) and its keyboard
    fallback form. A frozen ticket may still move (the guards allow a status-only change)."""
    ticket = _visible_ticket(request.user, key)
    form = TicketStatusForm(request.POST)
    if not form.is_valid():
        raise InvalidInput.for_field("status", str(UNKNOWN_STATUS_MESSAGE))
    ticket = services.ticket_change_status(actor=request.user, ticket=ticket, status=form.cleaned_data["status"])
    if request.htmx:
        return render(request, "tickets/partials/board.html", _board_context(request, ticket.project))
    messages.success(request, _("%(ticket)s moved to %(status)s.") % {
        "ticket": ticket.key, "status": ticket.get_status_display()})
    return redirect(_safe_next(request, reverse("tickets:project-board", args=[ticket.project.key])))


# --- Ticket list ------------------------------------------------------------------------------

@login_required
def ticket_list(request):
    user = request.user
    projects = list(Project.objects.visible_to(user, "read").order_by("key"))
    assignees = selectors.project_members([project.pk for project in projects])
    tickets = annotate_tickets(Ticket.objects.visible_to(user, "read").with_list_columns(), user)
    filterset = TicketFilter(request.GET, queryset=tickets.order_by("project__key", "number"), request=request)
    filter_form = TicketFilterForm(request.GET, projects=projects, assignees=assignees)
    filter_form.is_valid()  # shows what was not understood next to the field
    page_obj = paginate(request, filterset.qs)
    for ticket in page_obj.object_list:
        ticket.extension = extend_ticket_payload(ticket, user)
    return render(request, "tickets/ticket_list.html", {
        "page_obj": page_obj,
        "filter_form": filter_form,
        "can_create": Project.objects.visible_to(user, P.TICKETS_WRITE).filter(is_active=True).exists(),
    })


# --- Ticket detail, time entries and expenses --------------------------------------------------

def _with_status_labels(extension: dict) -> dict:
    if "settlements" not in extension:
        return extension
    settlements = [{**settlement, "status_label": SETTLEMENT_STATUS_LABELS.get(settlement["status"],
                                                                               settlement["status"])}
                   for settlement in extension["settlements"]]
    return {**extension, "settlements": settlements}


def _frozen_by(extension: dict) -> list[dict]:
    if not extension.get("is_frozen"):
        return []
    settlements = extension.get("settlements", [])
    freezing = [s for s in settlements if s["status"] in FREEZING_SETTLEMENT_STATUSES]
    return freezing or settlements


def _records(model, user, ticket: Ticket, ordering: tuple[str, ...], *, can_change: bool, is_admin: bool) -> list:
    records = list(model.objects.visible_to(user, "read").filter(ticket=ticket).select_related("user")
                   .order_by(*ordering))
    for record in records:
        # Only one's own records, unless a project admin (the service's rule, so no dead buttons).
        record.can_delete = can_change and (is_admin or record.user_id == user.pk)
    return records


def _detail_context(request, ticket: Ticket, *, time_form=None, expense_form=None) -> dict:
    user = request.user
    permissions = project_permissions(user, ticket.project_id)
    can_write = P.TICKETS_WRITE in permissions
    refusal = _edit_refusal(ticket, user) if can_write else None
    can_change = can_write and refusal is None
    is_admin = P.PROJECT_ADMIN in permissions
    extension = _with_status_labels(extend_ticket_payload(ticket, user))
    currency = ticket.project.budget_currency or DEFAULT_EXPENSE_CURRENCY
    return {
        "ticket": ticket,
        "extension": extension,
        "frozen_by": _frozen_by(extension),
        "edit_refusal": refusal,
        "can_write": can_write,
        "can_change": can_change,
        "statuses": TicketStatus.choices,
        "time_entries": _records(TimeEntry, user, ticket, ("-work_date", "-id"), can_change=can_change,
                                 is_admin=is_admin),
        "expenses": _records(Expense, user, ticket, ("-date", "-id"), can_change=can_change, is_admin=is_admin),
        "time_form": time_form or TimeEntryForm(prefix=TIME_PREFIX),
        "expense_form": expense_form or ExpenseForm(prefix=EXPENSE_PREFIX, initial={"currency": currency}),
    }


@login_required
def ticket_detail(request, key: str):
    ticket = _visible_ticket(request.user, key, for_detail=True)
    return render(request, DETAIL_TEMPLATE, _detail_context(request, ticket))


RECORD_PAGES = {
    # kind → (form class, prefix, fragment template, context key of the form)
    "time_entry": (TimeEntryForm, TIME_PREFIX, "tickets/partials/time_entries.html", "time_form"),
    "expense": (ExpenseForm, EXPENSE_PREFIX, "tickets/partials/expenses.html", "expense_form"),
}
RECORD_MESSAGES = {
    ("time_entry", "create"): gettext_lazy("Time logged on %(ticket)s."),
    ("time_entry", "delete"): gettext_lazy("Time entry deleted from %(ticket)s."),
    ("expense", "create"): gettext_lazy("Expense added to %(ticket)s."),
    ("expense", "delete"): gettext_lazy("Expense deleted from %(ticket)s."),
}


def _record_answer(request, ticket: Ticket, kind: str, action: str):
    """After a record was added or deleted: the section (with the message out of band) for HTMX,
    a redirect to the ticket otherwise."""
    message = RECORD_MESSAGES[(kind, action)] % {"ticket": ticket.key}
    if not request.htmx:
        messages.success(request, message)
        return redirect("tickets:ticket-detail", key=ticket.key)
    ticket = _visible_ticket(request.user, ticket.key, for_detail=True)
    return render(request, RECORD_PAGES[kind][2], {**_detail_context(request, ticket), "oob_message": message})


def _record_form_errors(request, ticket: Ticket, kind: str, form):
    ticket = _visible_ticket(request.user, ticket.key, for_detail=True)
    context = _detail_context(request, ticket, **{RECORD_PAGES[kind][3]: form})
    return invalid_form_response(request, RECORD_PAGES[kind][2] if request.htmx else DETAIL_TEMPLATE, context)


def _record_create(request, key: str, kind: str):
    ticket = _visible_ticket(request.user, key)
    form_class, prefix, _template, _name = RECORD_PAGES[kind]
    form = form_class(request.POST, prefix=prefix)
    if form.is_valid():
        try:
            services.record_create(services.RECORD_KINDS[kind], actor=request.user, ticket=ticket,
                                   **form.cleaned_data)
        except InvalidInput as error:
            add_service_errors(form, error)
        else:
            return _record_answer(request, ticket, kind, "create")
    return _record_form_errors(request, ticket, kind, form)


def _record_delete(request, key: str, kind: str, pk: int):
    ticket = _visible_ticket(request.user, key)
    model = services.RECORD_KINDS[kind].model
    record = get_object_or_404(model.objects.visible_to(request.user, "read").select_related("ticket__project", "user"),
                               ticket=ticket, pk=pk)
    services.record_delete(services.RECORD_KINDS[kind], actor=request.user, record=record)
    return _record_answer(request, ticket, kind, "delete")


@post_action
def time_entry_create(request, key: str):
    return _record_create(request, key, "time_entry")


@post_action
def time_entry_delete(request, key: str, pk: int):
    return _record_delete(request, key, "time_entry", pk)


@post_action
def expense_create(request, key: str):
    return _record_create(request, key, "expense")


@post_action
def expense_delete(request, key: str, pk: int):
    return _record_delete(request, key, "expense", pk)


# --- Create and edit --------------------------------------------------------------------------

def _posted(request):
    return request.POST if request.method == "POST" else None


def _form_page(request, form, *, ticket=None, status: int = 200):
    context = {"form": form, "ticket": ticket}
    if status == 400:
        return invalid_form_response(request, FORM_TEMPLATE, context)
    return render(request, FORM_TEMPLATE, context)


@login_required
@handles_refusals
def ticket_create(request):
    user = request.user
    projects = Project.objects.visible_to(user, P.TICKETS_WRITE).filter(is_active=True).order_by("key")
    if not projects.exists():
        raise PermissionDenied(str(NO_WRITABLE_PROJECT_MESSAGE), code="missing_permission")
    chosen = projects.filter(key=request_value(request, "project").upper()).first()
    # Assignees are members of the chosen project; before one is chosen, of any project offered.
    assignees = selectors.project_members([chosen.pk] if chosen else projects.values("pk"))
    form = TicketForm(_posted(request), projects=projects, assignees=assignees,
                      initial={"project": chosen.key if chosen else None})
    # Choosing another project reloads the assignee choices (its members) in place.
    form.fields["project"].widget.attrs.update({
        "hx-get": reverse("tickets:ticket-create"), "hx-include": "this", "hx-target": "#id_assignee",
        "hx-select": "#id_assignee", "hx-swap": "outerHTML"})
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.ticket_create(actor=user, project=form.cleaned_data["project"],
                                            **form.service_values())
        except InvalidInput as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Ticket %(ticket)s created.") % {"ticket": ticket.key})
            return redirect("tickets:ticket-detail", key=ticket.key)
    return _form_page(request, form, status=400 if request.method == "POST" else 200)


@login_required
@handles_refusals
def ticket_edit(request, key: str):
    user = request.user
    ticket = _visible_ticket(user, key)
    require_project_permission(user, ticket.project, P.TICKETS_WRITE, visible_with=P.TICKETS_READ)
    # A frozen ticket is refused before any form is shown, not only when it is saved.
    refusal = _edit_refusal(ticket, user)
    if refusal is not None:
        raise refusal
    assignees = selectors.project_members([ticket.project_id], include=ticket.assignee_id)
    initial = {name: getattr(ticket, name) for name in services.TICKET_FIELDS}
    form = TicketForm(_posted(request), assignees=assignees, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.ticket_update(actor=user, ticket=ticket, changes=form.service_values())
        except InvalidInput as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Ticket %(ticket)s saved.") % {"ticket": ticket.key})
            return redirect("tickets:ticket-detail", key=ticket.key)
    return _form_page(request, form, ticket=ticket, status=400 if request.method == "POST" else 200)
