"""Every write path of ticket data consults the edit-guard registry (SPEC §1, "Edit guards").

A recording guard is registered under a test name; it keeps every `EditAttempt` (with a copy of
the ticket and record as the guard saw them) and refuses the actions it is told to refuse. The
services are called directly, then the same refusals are driven through the REST API and the
Django admin, which must report the guard's own status and code and write nothing.
"""

import copy
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from core.errors import EditBlocked
from tests.factories import ExpenseFactory, ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tests.helpers import admin_form_data
from tickets import services
from tickets.choices import Activity, TicketPriority, TicketStatus
from tickets.guards import EditAction, register_edit_guard, registered_edit_guards, unregister_edit_guard
from tickets.models import Expense, Ticket, TimeEntry

pytestmark = pytest.mark.django_db

GUARD_NAME = "test-guard"
BLOCK_MESSAGE = "Blocked by test guard"
BLOCK_CODE = "test_blocked"
LOCK_CODE = "test_locked"


class RecordingGuard:
    """Records attempts; refuses the configured actions (optionally only on some tickets)."""

    def __init__(self):
        self.attempts = []
        self.seen_tickets = []
        self.seen_records = []
        self._refused: frozenset = frozenset()
        self._ticket_ids: frozenset | None = None
        self.status_code = 403
        self.code = BLOCK_CODE

    def refuse(self, *actions, tickets=None, status_code: int = 403, code: str = BLOCK_CODE) -> "RecordingGuard":
        self._refused = frozenset(actions or EditAction)
        self._ticket_ids = None if tickets is None else frozenset(ticket.pk for ticket in tickets)
        self.status_code, self.code = status_code, code
        return self

    @property
    def actions(self) -> list:
        return [attempt.action for attempt in self.attempts]

    def __call__(self, attempt) -> None:
        self.attempts.append(attempt)
        # Services keep mutating the instances after asking; keep them as the guard saw them.
        self.seen_tickets.append(copy.copy(attempt.ticket))
        self.seen_records.append(copy.copy(attempt.record))
        if attempt.action not in self._refused:
            return
        if self._ticket_ids is not None and attempt.ticket.pk not in self._ticket_ids:
            return
        raise EditBlocked(BLOCK_MESSAGE, code=self.code, status_code=self.status_code)


@pytest.fixture
def guard():
    recorder = RecordingGuard()
    register_edit_guard(GUARD_NAME, recorder)
    yield recorder
    unregister_edit_guard(GUARD_NAME)


@pytest.fixture
def project():
    return ProjectFactory(key="GRD")


@pytest.fixture
def owner(project):
    user = UserFactory(username="owner", is_staff=True)
    grant(user, project, "owner")
    return user


@pytest.fixture
def ticket(project):
    return TicketFactory(project=project, title="Original title", description="Original description",
                         priority=TicketPriority.MEDIUM, status=TicketStatus.TODO)


@pytest.fixture
def other_ticket(project):
    return TicketFactory(project=project, title="Other ticket")


@pytest.fixture
def entry(ticket, owner):
    return TimeEntryFactory(ticket=ticket, user=owner, minutes=60, description="Original work")


@pytest.fixture
def expense(ticket, owner):
    return ExpenseFactory(ticket=ticket, user=owner, amount=Decimal("100.00"), description="Original expense")


def _row(instance) -> dict:
    """The row's current database values (for "nothing changed" assertions)."""
    return type(instance).objects.filter(pk=instance.pk).values().get()


# --- The registry -------------------------------------------------------------------------------

def test_fixture_registers_and_unregisters_the_guard(guard):
    assert registered_edit_guards()[GUARD_NAME] is guard
    unregister_edit_guard(GUARD_NAME)
    assert GUARD_NAME not in registered_edit_guards()
    register_edit_guard(GUARD_NAME, guard)


def test_registering_under_the_same_name_replaces_the_guard(guard, owner, ticket):
    replacement = RecordingGuard()
    register_edit_guard(GUARD_NAME, replacement)
    services.ticket_update(actor=owner, ticket=ticket, changes={"title": "Renamed"})
    assert guard.attempts == []
    assert replacement.actions == [EditAction.TICKET_UPDATE]


# --- Services: what each write path asks ----------------------------------------------------------

def test_ticket_update_asks_with_only_the_changed_fields(guard, owner, ticket):
    services.ticket_update(actor=owner, ticket=ticket, changes={
        "title": "New title", "description": "Original description", "priority": TicketPriority.HIGH,
    })
    [attempt] = guard.attempts
    assert attempt.action == EditAction.TICKET_UPDATE
    assert attempt.changed_fields == frozenset({"title", "priority"})
    assert attempt.ticket.pk == ticket.pk
    assert attempt.actor == owner
    assert attempt.record is None
    ticket.refresh_from_db()
    assert (ticket.title, ticket.priority) == ("New title", TicketPriority.HIGH)


def test_ticket_update_refused_changes_nothing(guard, owner, ticket):
    guard.refuse(EditAction.TICKET_UPDATE)
    before = _row(ticket)
    with pytest.raises(EditBlocked) as excinfo:
        services.ticket_update(actor=owner, ticket=ticket, changes={"title": "New title", "due_date": date(2026, 1, 1)})
    assert (excinfo.value.code, excinfo.value.status_code) == (BLOCK_CODE, 403)
    assert guard.attempts[0].changed_fields == frozenset({"title", "due_date"})
    assert _row(ticket) == before


def test_ticket_update_with_only_status_changed_takes_the_status_path(guard, owner, ticket):
    guard.refuse(EditAction.TICKET_UPDATE)
    # Title and priority are given but equal to the stored values: only the status changes.
    services.ticket_update(actor=owner, ticket=ticket, changes={
        "title": "Original title", "priority": TicketPriority.MEDIUM, "status": TicketStatus.DONE,
    })
    [attempt] = guard.attempts
    assert attempt.action == EditAction.TICKET_STATUS
    assert attempt.changed_fields == frozenset({"status"})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.DONE


def test_ticket_update_without_changes_asks_nobody(guard, owner, ticket):
    guard.refuse()
    services.ticket_update(actor=owner, ticket=ticket, changes={"title": "Original title"})
    assert guard.attempts == []


def test_ticket_change_status_asks_for_status(guard, owner, ticket):
    services.ticket_change_status(actor=owner, ticket=ticket, status=TicketStatus.REVIEW)
    [attempt] = guard.attempts
    assert (attempt.action, attempt.changed_fields) == (EditAction.TICKET_STATUS, frozenset({"status"}))
    assert attempt.actor == owner


def test_ticket_change_status_refused_keeps_the_status(guard, owner, ticket):
    guard.refuse(EditAction.TICKET_STATUS)
    with pytest.raises(EditBlocked):
        services.ticket_change_status(actor=owner, ticket=ticket, status=TicketStatus.REVIEW)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.TODO


def test_ticket_delete_asks_and_refusal_keeps_the_ticket(guard, owner, ticket, entry):
    guard.refuse(EditAction.TICKET_DELETE)
    with pytest.raises(EditBlocked):
        services.ticket_delete(actor=owner, ticket=ticket)
    assert guard.actions == [EditAction.TICKET_DELETE]
    assert guard.attempts[0].ticket.pk == ticket.pk
    assert Ticket.objects.filter(pk=ticket.pk).exists()
    assert TimeEntry.objects.filter(pk=entry.pk).exists()


def test_ticket_delete_allowed_deletes(guard, owner, ticket):
    services.ticket_delete(actor=owner, ticket=ticket)
    assert guard.actions == [EditAction.TICKET_DELETE]
    assert not Ticket.objects.filter(pk=ticket.pk).exists()


def test_ticket_delete_asks_about_each_of_its_records(guard, owner, ticket, entry, expense):
    guard.refuse(EditAction.TIME_ENTRY_DELETE, status_code=409, code=LOCK_CODE)
    with pytest.raises(EditBlocked) as refused:
        services.ticket_delete(actor=owner, ticket=ticket)
    assert refused.value.code == LOCK_CODE
    assert guard.actions == [EditAction.TICKET_DELETE, EditAction.TIME_ENTRY_DELETE]
    assert guard.attempts[1].record.pk == entry.pk
    assert Ticket.objects.filter(pk=ticket.pk).exists() and TimeEntry.objects.filter(pk=entry.pk).exists()

    guard.refuse(EditAction.TICKET_STATUS)  # refuse only something unrelated
    guard.attempts.clear()
    services.ticket_delete(actor=owner, ticket=ticket)
    assert guard.actions == [EditAction.TICKET_DELETE, EditAction.TIME_ENTRY_DELETE, EditAction.EXPENSE_DELETE]
    assert not Expense.objects.filter(pk=expense.pk).exists()


def test_time_entry_create_asks_on_its_ticket(guard, owner, ticket):
    entry = services.time_entry_create(actor=owner, ticket=ticket, work_date=date(2026, 10, 1), minutes=30,
                                       activity=Activity.SUPPORT)
    [attempt] = guard.attempts
    assert attempt.action == EditAction.TIME_ENTRY_CREATE
    assert attempt.ticket.pk == ticket.pk
    assert attempt.record is None
    assert {"ticket", "user", "work_date", "minutes", "activity"} <= attempt.changed_fields
    assert TimeEntry.objects.filter(pk=entry.pk).exists()


def test_time_entry_update_asks_with_the_record_and_changed_fields(guard, owner, entry):
    services.time_entry_update(actor=owner, entry=entry, changes={"minutes": 90, "description": "Original work"})
    [attempt] = guard.attempts
    assert attempt.action == EditAction.TIME_ENTRY_UPDATE
    assert attempt.record.pk == entry.pk
    assert attempt.ticket.pk == entry.ticket_id
    assert attempt.changed_fields == frozenset({"minutes"})


def test_time_entry_delete_asks_with_the_record(guard, owner, entry):
    entry_id = entry.pk
    services.time_entry_delete(actor=owner, entry=entry)
    [attempt] = guard.attempts
    # Django clears a deleted instance's pk; the copy keeps it as the guard saw it.
    assert (attempt.action, guard.seen_records[0].pk, attempt.ticket.pk) == (
        EditAction.TIME_ENTRY_DELETE, entry_id, entry.ticket_id)
    assert not TimeEntry.objects.filter(pk=entry_id).exists()


def test_expense_create_asks_on_its_ticket(guard, owner, ticket):
    services.expense_create(actor=owner, ticket=ticket, date=date(2026, 10, 1), description="Taxi",
                            amount=Decimal("25.00"), currency="NOK")
    [attempt] = guard.attempts
    assert (attempt.action, attempt.ticket.pk, attempt.record) == (EditAction.EXPENSE_CREATE, ticket.pk, None)
    assert {"ticket", "user", "date", "description", "amount", "currency"} <= attempt.changed_fields


def test_expense_update_asks_with_the_record_and_changed_fields(guard, owner, expense):
    services.expense_update(actor=owner, expense=expense, changes={"amount": Decimal("120.00"), "currency": "NOK"})
    [attempt] = guard.attempts
    assert (attempt.action, attempt.record.pk) == (EditAction.EXPENSE_UPDATE, expense.pk)
    assert attempt.changed_fields == frozenset({"amount"})


def test_expense_delete_asks_with_the_record(guard, owner, expense):
    expense_id = expense.pk
    services.expense_delete(actor=owner, expense=expense)
    [attempt] = guard.attempts
    assert (attempt.action, guard.seen_records[0].pk) == (EditAction.EXPENSE_DELETE, expense_id)
    assert not Expense.objects.filter(pk=expense_id).exists()


@pytest.mark.parametrize("action", [EditAction.TIME_ENTRY_CREATE, EditAction.EXPENSE_CREATE])
def test_record_create_refused_writes_no_row(guard, owner, ticket, action):
    guard.refuse(action, status_code=409, code=LOCK_CODE)
    with pytest.raises(EditBlocked) as excinfo:
        if action == EditAction.TIME_ENTRY_CREATE:
            services.time_entry_create(actor=owner, ticket=ticket, work_date=date(2026, 10, 1), minutes=30)
        else:
            services.expense_create(actor=owner, ticket=ticket, date=date(2026, 10, 1), description="Taxi",
                                    amount=Decimal("25.00"), currency="NOK")
    assert (excinfo.value.status_code, excinfo.value.code) == (409, LOCK_CODE)
    assert TimeEntry.objects.count() == 0
    assert Expense.objects.count() == 0


def test_time_entry_update_and_delete_refused_change_nothing(guard, owner, entry):
    guard.refuse(EditAction.TIME_ENTRY_UPDATE, EditAction.TIME_ENTRY_DELETE, status_code=409, code=LOCK_CODE)
    before = _row(entry)
    with pytest.raises(EditBlocked):
        services.time_entry_update(actor=owner, entry=entry, changes={"minutes": 90})
    with pytest.raises(EditBlocked):
        services.time_entry_delete(actor=owner, entry=entry)
    assert guard.actions == [EditAction.TIME_ENTRY_UPDATE, EditAction.TIME_ENTRY_DELETE]
    assert _row(entry) == before


def test_expense_update_and_delete_refused_change_nothing(guard, owner, expense):
    guard.refuse(EditAction.EXPENSE_UPDATE, EditAction.EXPENSE_DELETE, status_code=409, code=LOCK_CODE)
    before = _row(expense)
    with pytest.raises(EditBlocked):
        services.expense_update(actor=owner, expense=expense, changes={"amount": Decimal("1.00")})
    with pytest.raises(EditBlocked):
        services.expense_delete(actor=owner, expense=expense)
    assert guard.actions == [EditAction.EXPENSE_UPDATE, EditAction.EXPENSE_DELETE]
    assert _row(expense) == before


def test_moving_a_time_entry_asks_both_tickets(guard, owner, entry, ticket, other_ticket):
    services.time_entry_update(actor=owner, entry=entry, changes={"ticket": other_ticket})
    assert [(a.action, a.ticket.pk) for a in guard.attempts] == [
        (EditAction.TIME_ENTRY_UPDATE, ticket.pk),
        (EditAction.TIME_ENTRY_CREATE, other_ticket.pk),
    ]
    assert guard.attempts[0].record.pk == entry.pk
    assert guard.attempts[0].changed_fields == frozenset({"ticket"})
    entry.refresh_from_db()
    assert entry.ticket_id == other_ticket.pk


def test_moving_a_time_entry_onto_a_refusing_ticket_is_refused(guard, owner, entry, ticket, other_ticket):
    guard.refuse(tickets=[other_ticket])
    with pytest.raises(EditBlocked):
        services.time_entry_update(actor=owner, entry=entry, changes={"ticket": other_ticket, "minutes": 15})
    assert guard.actions == [EditAction.TIME_ENTRY_UPDATE, EditAction.TIME_ENTRY_CREATE]
    entry.refresh_from_db()
    assert (entry.ticket_id, entry.minutes) == (ticket.pk, 60)


def test_moving_a_time_entry_off_a_refusing_ticket_is_refused(guard, owner, entry, ticket, other_ticket):
    guard.refuse(tickets=[ticket])
    with pytest.raises(EditBlocked):
        services.time_entry_update(actor=owner, entry=entry, changes={"ticket": other_ticket})
    entry.refresh_from_db()
    assert entry.ticket_id == ticket.pk


def test_moving_an_expense_asks_both_tickets(guard, owner, expense, ticket, other_ticket):
    guard.refuse(EditAction.EXPENSE_CREATE)
    with pytest.raises(EditBlocked):
        services.expense_update(actor=owner, expense=expense, changes={"ticket": other_ticket})
    assert [(a.action, a.ticket.pk) for a in guard.attempts] == [
        (EditAction.EXPENSE_UPDATE, ticket.pk),
        (EditAction.EXPENSE_CREATE, other_ticket.pk),
    ]
    expense.refresh_from_db()
    assert expense.ticket_id == ticket.pk


# --- The guard sees the locked row, not the caller's copy -------------------------------------------

def test_ticket_guard_sees_current_database_values(guard, owner, ticket):
    stale = Ticket.objects.get(pk=ticket.pk)
    Ticket.objects.filter(pk=ticket.pk).update(title="Renamed elsewhere", status=TicketStatus.REVIEW)
    services.ticket_update(actor=owner, ticket=stale, changes={"priority": TicketPriority.CRITICAL})
    assert guard.attempts[0].ticket is not stale
    seen = guard.seen_tickets[0]
    assert (seen.title, seen.status, seen.priority) == ("Renamed elsewhere", TicketStatus.REVIEW, TicketPriority.MEDIUM)
    ticket.refresh_from_db()
    # Only the changed field was written: the concurrent rename survives.
    assert (ticket.title, ticket.priority) == ("Renamed elsewhere", TicketPriority.CRITICAL)


def test_record_guard_sees_current_database_values(guard, owner, entry):
    stale = TimeEntry.objects.get(pk=entry.pk)
    TimeEntry.objects.filter(pk=entry.pk).update(minutes=240)
    Ticket.objects.filter(pk=entry.ticket_id).update(title="Renamed elsewhere")
    guard.refuse(EditAction.TIME_ENTRY_DELETE)
    with pytest.raises(EditBlocked):
        services.time_entry_delete(actor=owner, entry=stale)
    assert guard.seen_records[0].minutes == 240
    assert guard.seen_tickets[0].title == "Renamed elsewhere"


# --- REST API -------------------------------------------------------------------------------------

@pytest.fixture
def api(owner):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.mark.parametrize(("status_code", "code"), [(403, BLOCK_CODE), (409, LOCK_CODE)])
def test_api_ticket_patch_refused_with_the_guards_status_and_code(guard, api, ticket, status_code, code):
    guard.refuse(status_code=status_code, code=code)
    before = _row(ticket)
    response = api.patch(f"/api/tickets/{ticket.key}/", {"title": "New title"}, format="json")
    assert response.status_code == status_code
    assert response.json() == {"code": code, "detail": BLOCK_MESSAGE}
    assert guard.actions == [EditAction.TICKET_UPDATE]
    assert _row(ticket) == before


def test_api_ticket_status_only_patch_passes_a_guard_that_allows_status(guard, api, ticket):
    guard.refuse(EditAction.TICKET_UPDATE, EditAction.TICKET_DELETE)
    response = api.patch(f"/api/tickets/{ticket.key}/", {"status": TicketStatus.DONE}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == TicketStatus.DONE
    assert guard.actions == [EditAction.TICKET_STATUS]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.DONE


def test_api_ticket_patch_with_status_and_title_is_an_update(guard, api, ticket):
    guard.refuse(EditAction.TICKET_UPDATE)
    response = api.patch(f"/api/tickets/{ticket.key}/", {"status": TicketStatus.DONE, "title": "New"}, format="json")
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert (ticket.status, ticket.title) == (TicketStatus.TODO, "Original title")


def test_api_ticket_delete_refused(guard, api, ticket):
    guard.refuse(EditAction.TICKET_DELETE)
    response = api.delete(f"/api/tickets/{ticket.key}/")
    assert response.status_code == 403
    assert response.json()["code"] == BLOCK_CODE
    assert Ticket.objects.filter(pk=ticket.pk).exists()


RECORD_APIS = {
    "time_entry": ("/api/time-entries/", TimeEntry, {"work_date": "2026-10-01", "minutes": 30,
                                                      "activity": Activity.SUPPORT}, {"minutes": 90}),
    "expense": ("/api/expenses/", Expense, {"date": "2026-10-01", "description": "Taxi", "amount": "25.00",
                                            "currency": "NOK"}, {"amount": "1.00"}),
}


@pytest.mark.parametrize("kind", RECORD_APIS)
def test_api_record_create_refused_writes_nothing(guard, api, ticket, kind):
    url, model, body, _changes = RECORD_APIS[kind]
    guard.refuse(status_code=409, code=LOCK_CODE)
    response = api.post(url, {"ticket": ticket.key, **body}, format="json")
    assert response.status_code == 409, response.content
    assert response.json() == {"code": LOCK_CODE, "detail": BLOCK_MESSAGE}
    assert guard.actions == [services.RECORD_KINDS[kind].create]
    assert model.objects.count() == 0


@pytest.mark.parametrize("kind", RECORD_APIS)
def test_api_record_create_allowed_writes(guard, api, ticket, kind):
    url, model, body, _changes = RECORD_APIS[kind]
    response = api.post(url, {"ticket": ticket.key, **body}, format="json")
    assert response.status_code == 201, response.content
    assert guard.actions == [services.RECORD_KINDS[kind].create]
    assert model.objects.count() == 1


@pytest.mark.parametrize("kind", RECORD_APIS)
def test_api_record_patch_and_delete_refused_change_nothing(guard, api, entry, expense, kind):
    url, model, _body, changes = RECORD_APIS[kind]
    record = entry if kind == "time_entry" else expense
    guard.refuse(status_code=409, code=LOCK_CODE)
    before, count = _row(record), model.objects.count()

    response = api.patch(f"{url}{record.pk}/", changes, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["code"] == LOCK_CODE

    response = api.delete(f"{url}{record.pk}/")
    assert response.status_code == 409
    assert response.json() == {"code": LOCK_CODE, "detail": BLOCK_MESSAGE}

    kind_ = services.RECORD_KINDS[kind]
    assert guard.actions == [kind_.update, kind_.delete]
    assert model.objects.count() == count
    assert _row(record) == before


# --- Django admin ---------------------------------------------------------------------------------

@pytest.fixture(params=["owner", "superuser"])
def admin_client(request, owner):
    user = owner if request.param == "owner" else UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def test_admin_ticket_change_refused_rolls_back_and_shows_the_message(guard, admin_client, ticket, entry, expense):
    url = f"/admin/tickets/ticket/{ticket.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    data = admin_form_data(page)
    guard.refuse(status_code=409, code=LOCK_CODE)
    before = _row(ticket)

    response = admin_client.post(url, {**data, "title": "Changed in admin"})
    assert response.status_code == 302
    assert response["Location"] == url
    assert guard.actions == [EditAction.TICKET_UPDATE]
    assert guard.attempts[0].changed_fields == frozenset({"title"})
    assert _row(ticket) == before

    followed = admin_client.get(response["Location"])
    assert f"{BLOCK_MESSAGE} ({LOCK_CODE})" in followed.content.decode()


def test_admin_ticket_change_allowed_saves(guard, admin_client, ticket, entry):
    url = f"/admin/tickets/ticket/{ticket.pk}/change/"
    data = admin_form_data(admin_client.get(url))
    response = admin_client.post(url, {**data, "title": "Changed in admin"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/tickets/ticket/"
    assert guard.actions == [EditAction.TICKET_UPDATE]
    ticket.refresh_from_db()
    assert ticket.title == "Changed in admin"
    assert TimeEntry.objects.filter(pk=entry.pk, ticket=ticket).exists()


def test_admin_ticket_status_only_change_passes_a_guard_that_allows_status(guard, admin_client, ticket):
    url = f"/admin/tickets/ticket/{ticket.pk}/change/"
    data = admin_form_data(admin_client.get(url))
    guard.refuse(EditAction.TICKET_UPDATE)
    response = admin_client.post(url, {**data, "status": TicketStatus.DONE})
    assert response.status_code == 302
    assert guard.actions == [EditAction.TICKET_STATUS]
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.DONE


def test_admin_ticket_delete_refused_keeps_the_ticket(guard, admin_client, ticket):
    guard.refuse(EditAction.TICKET_DELETE)
    url = f"/admin/tickets/ticket/{ticket.pk}/delete/"
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert guard.actions == [EditAction.TICKET_DELETE]
    assert Ticket.objects.filter(pk=ticket.pk).exists()
    assert f"{BLOCK_MESSAGE} ({BLOCK_CODE})" in admin_client.get(response["Location"]).content.decode()


def test_admin_time_entry_delete_refused_keeps_the_entry(guard, admin_client, entry):
    guard.refuse(EditAction.TIME_ENTRY_DELETE)
    url = f"/admin/tickets/timeentry/{entry.pk}/delete/"
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert response["Location"] == url
    assert guard.actions == [EditAction.TIME_ENTRY_DELETE]
    assert TimeEntry.objects.filter(pk=entry.pk).exists()
    assert f"{BLOCK_MESSAGE} ({BLOCK_CODE})" in admin_client.get(url).content.decode()


def test_admin_time_entry_delete_allowed_deletes(guard, admin_client, entry):
    response = admin_client.post(f"/admin/tickets/timeentry/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert guard.actions == [EditAction.TIME_ENTRY_DELETE]
    assert not TimeEntry.objects.filter(pk=entry.pk).exists()


def _time_entry_add_data(ticket, user) -> dict:
    return {"ticket": ticket.pk, "user": user.pk, "work_date": "2026-10-01", "minutes": 45,
            "activity": Activity.SUPPORT, "description": "From the admin", "billable": "on"}


def test_admin_time_entry_add_refused_writes_no_row(guard, admin_client, owner, ticket):
    guard.refuse(EditAction.TIME_ENTRY_CREATE, status_code=409, code=LOCK_CODE)
    url = "/admin/tickets/timeentry/add/"
    response = admin_client.post(url, _time_entry_add_data(ticket, owner))
    assert response.status_code == 302
    assert response["Location"] == url
    assert guard.actions == [EditAction.TIME_ENTRY_CREATE]
    assert guard.attempts[0].ticket.pk == ticket.pk
    assert TimeEntry.objects.count() == 0
    assert f"{BLOCK_MESSAGE} ({LOCK_CODE})" in admin_client.get(url).content.decode()


def test_admin_time_entry_add_allowed_writes_one_row(guard, admin_client, owner, ticket):
    response = admin_client.post("/admin/tickets/timeentry/add/", _time_entry_add_data(ticket, owner))
    assert response.status_code == 302
    assert guard.actions == [EditAction.TIME_ENTRY_CREATE]
    assert TimeEntry.objects.filter(ticket=ticket, minutes=45, user=owner).count() == 1


def test_admin_time_entry_change_refused_changes_nothing(guard, admin_client, entry):
    url = f"/admin/tickets/timeentry/{entry.pk}/change/"
    data = admin_form_data(admin_client.get(url))
    guard.refuse(EditAction.TIME_ENTRY_UPDATE)
    before = _row(entry)
    response = admin_client.post(url, {**data, "minutes": 15})
    assert response.status_code == 302
    assert response["Location"] == url
    assert guard.actions == [EditAction.TIME_ENTRY_UPDATE]
    assert guard.attempts[0].changed_fields == frozenset({"minutes"})
    assert _row(entry) == before


def test_admin_expense_change_refused_changes_nothing(guard, admin_client, expense):
    url = f"/admin/tickets/expense/{expense.pk}/change/"
    data = admin_form_data(admin_client.get(url))
    guard.refuse(EditAction.EXPENSE_UPDATE)
    before = _row(expense)
    response = admin_client.post(url, {**data, "amount": "5.00"})
    assert response.status_code == 302
    assert guard.actions == [EditAction.EXPENSE_UPDATE]
    assert _row(expense) == before
