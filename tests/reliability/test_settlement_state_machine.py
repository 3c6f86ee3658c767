"""A Hypothesis state machine over the settlement workflow, driven through the REST API.

Random sequences of: create a settlement, edit its period, link and unlink tickets, transition
it, upload, change and delete attachments, delete it; edit and delete tickets; log, edit and
delete time entries; each by a random user (owner, admin, member, viewer, an admin in one
project who is a viewer in the other, an outsider). A model of SPEC §2–3 predicts every answer
(status and error code) before the request is sent; after every step the database must agree
with the model and these invariants must hold:

- a ticket is frozen ⇔ it is linked to an active settlement in `sent` or `paid`;
- `sent_at` is set ⇔ the status is sent or paid, `paid_at` ⇔ paid, and `sent_at` survives
  sent→paid→sent; `paid_at` is never before `sent_at`;
- a refused request changes nothing (tickets, entries, links, attachments, statuses, events);
  an allowed one succeeds and writes exactly one audit event when it changes a settlement.

Every example runs in a savepoint that is rolled back; the run is derandomized for CI.
"""

import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from rest_framework.test import APIClient

from rbac import services as rbac_services
from rbac.choices import BUILTIN_ROLES
from rbac.choices import ProjectPermission as P
from settlements.choices import ALLOWED_SETTLEMENT_TRANSITIONS, FREEZING_STATUSES, REVERSE_TRANSITIONS
from settlements.guards import is_ticket_frozen
from settlements.models import Settlement, SettlementAttachment, SettlementEvent, SettlementTicket
from tests.factories import ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tests.tally import tally
from tickets.models import Ticket, TimeEntry

pytestmark = pytest.mark.django_db

MACHINE_SETTINGS = settings(
    max_examples=60, stateful_step_count=20, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
MAX_ATTACHMENTS = 3  # lowered from 10 so that random runs reach the limit

PROJECTS = ("MNX", "ACME")
# A custom role that may change settlements but is no project admin (so cannot send them back).
CUSTOM_ROLES = {"biller": ("Biller", (P.TICKETS_READ, P.SETTLEMENTS_READ, P.SETTLEMENTS_WRITE))}
# Each user's role per project; "mixed" is an admin in MNX but only a viewer in ACME.
ROLES = {
    "owner": {"MNX": "owner", "ACME": "owner"},
    "admin": {"MNX": "admin", "ACME": "admin"},
    "member": {"MNX": "member", "ACME": "member"},
    "viewer": {"MNX": "viewer", "ACME": "viewer"},
    "mixed": {"MNX": "admin", "ACME": "viewer"},
    "biller": {"MNX": "biller", "ACME": "biller"},
    "outsider": {},
}
PERIODS = [(date(2026, 9, 1), date(2026, 9, 30)), (date(2026, 9, 15), date(2026, 10, 15)),
           (date(2026, 10, 1), date(2026, 10, 31))]

# Biased towards the users who may change settlements, so that runs get past the refusals.
users = st.sampled_from(["owner", "owner", "admin", "admin", "mixed", "biller", "biller", "member", "viewer",
                         "outsider"])
indices = st.integers(min_value=0, max_value=20)


def permissions(user: str, project: str) -> set[str]:
    role = ROLES[user].get(project)
    return set({**BUILTIN_ROLES, **CUSTOM_ROLES}[role][1]) if role else set()


def overlaps(a: tuple[date, date], b: tuple[date, date]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


@dataclass
class MSettlement:
    pk: int
    projects: frozenset[str]
    period: tuple[date, date]
    status: str = "draft"
    active: bool = True
    tickets: set[int] = field(default_factory=set)
    attachments: dict[int, str] = field(default_factory=dict)  # id → state
    sent_at: str | None = None
    events: int = 1  # "created"


@dataclass
class MTicket:
    pk: int
    key: str
    project: str
    title: str
    status: str = "backlog"


@dataclass
class MEntry:
    pk: int
    ticket: int
    user: str
    minutes: int


class Refused(Exception):
    """The answer the model expects instead of success: (HTTP status, error code)."""

    def __init__(self, status: int, code: str):
        super().__init__(status, code)
        self.status, self.code = status, code


class SettlementWorkflow(RuleBasedStateMachine):
    steps = 0
    outcomes: Counter = Counter()  # (rule, "ok" or the refusal's code) over the whole run

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        projects = {key: ProjectFactory(key=key) for key in PROJECTS}
        root = UserFactory(username="root", is_superuser=True)
        for project in projects.values():
            for slug, (name, granted) in CUSTOM_ROLES.items():
                rbac_services.role_create(actor=root, project=project, slug=slug, name=name, permissions=granted)
        self.clients: dict[str, APIClient] = {}
        people = {}
        for name, roles in ROLES.items():
            user = UserFactory(username=name)
            for key, role in roles.items():
                grant(user, projects[key], role)
            client = APIClient()
            client.force_authenticate(user)
            self.clients[name], people[name] = client, user
        self.tickets: dict[int, MTicket] = {}
        self.entries: dict[int, MEntry] = {}
        for key, count in (("MNX", 3), ("ACME", 2)):
            for n in range(count):
                ticket = TicketFactory(project=projects[key], title=f"{key} ticket {n}")
                self.tickets[ticket.pk] = MTicket(ticket.pk, ticket.key, key, ticket.title)
                for author in ("member", "owner"):
                    entry = TimeEntryFactory(ticket=ticket, user=people[author], minutes=30,
                                             work_date=date(2026, 9, 10))
                    self.entries[entry.pk] = MEntry(entry.pk, ticket.pk, author, 30)
        # Settlements to start from: a draft over both projects with MNX-1 linked, a sent one of MNX
        # holding MNX-2 (so frozen tickets exist from the first step), and an empty draft whose
        # period overlaps both (so linking their tickets to it clashes).
        self.settlements: list[MSettlement] = []
        owner = self.clients["owner"]
        mnx = sorted(pk for pk, ticket in self.tickets.items() if ticket.project == "MNX")
        for keys, period, ticket_pk, status in (((*PROJECTS,), PERIODS[0], mnx[0], "draft"),
                                                (("MNX",), PERIODS[2], mnx[1], "sent"),
                                                ((*PROJECTS,), PERIODS[1], None, "draft")):
            body = owner.post("/api/settlements/", {
                "name": "Seeded", "period_start": period[0].isoformat(), "period_end": period[1].isoformat(),
                "projects": list(keys)}, format="json").json()
            settlement = MSettlement(body["id"], frozenset(keys), period)
            if ticket_pk is not None:
                owner.post(f"/api/settlements/{settlement.pk}/tickets/", {"ticket": ticket_pk}, format="json")
                settlement.tickets.add(ticket_pk)
                settlement.events += 1
            if status == "sent":
                body = owner.post(f"/api/settlements/{settlement.pk}/transition/", {"status": "sent"},
                                  format="json").json()
                settlement.status, settlement.sent_at = "sent", body["sent_at"]
                settlement.events += 1
            self.settlements.append(settlement)

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- The rules of SPEC §2–3, as the model sees them ------------------------------------------

    def can(self, user: str, permission: str, projects) -> bool:
        return all(permission in permissions(user, project) for project in projects)

    def frozen(self, ticket_pk: int) -> bool:
        return any(s.active and s.status in FREEZING_STATUSES and ticket_pk in s.tickets for s in self.settlements)

    def visible(self, user: str, settlement: MSettlement) -> bool:
        return settlement.active and any(P.SETTLEMENTS_READ in permissions(user, p) for p in settlement.projects)

    def require_settlement(self, user: str, settlement: MSettlement, permission: str = P.SETTLEMENTS_WRITE):
        if not self.visible(user, settlement):
            raise Refused(404, "not_found")
        if not self.can(user, permission, settlement.projects):
            raise Refused(403, "missing_permission")

    def require_draft(self, settlement: MSettlement):
        if settlement.status != "draft":
            raise Refused(409, "settlement_not_draft")

    def require_ticket(self, user: str, ticket: MTicket, permission: str, *, unreadable=(404, "not_found")):
        if P.TICKETS_READ not in permissions(user, ticket.project):
            raise Refused(*unreadable)
        if permission not in permissions(user, ticket.project):
            raise Refused(403, "missing_permission")

    def clash(self, settlement: MSettlement, ticket_pks, period) -> bool:
        return any(other is not settlement and other.active and overlaps(other.period, period)
                   and other.tickets & set(ticket_pks) for other in self.settlements)

    # --- Doing it ----------------------------------------------------------------------------

    def pick(self, items, index):
        items = list(items)
        return items[index % len(items)]

    def pick_settlement(self, index, *, having=lambda settlement: True) -> MSettlement:
        """Mostly an active settlement; now and then (a high index) any, deleted ones included."""
        candidates = [s for s in self.settlements if having(s)]
        active = [s for s in candidates if s.active]
        return self.pick(candidates if index >= 18 or not active else active, index)

    def attempt(self, user: str, expect, send):
        """`expect()` raises Refused or returns; `send(client)` makes the request. The answer must be
        the predicted one; returns the response of an allowed request, None after a refusal."""
        SettlementWorkflow.steps += 1
        rule_name = sys._getframe(1).f_code.co_name
        try:
            expect()
            refused = None
        except Refused as exc:
            refused = exc
        response = send(self.clients[user])
        body = response.json() if response.content and response["Content-Type"].startswith("application/json") else {}
        SettlementWorkflow.outcomes[rule_name, refused.code if refused else "ok"] += 1
        if refused is not None:
            assert (response.status_code, body.get("code")) == (refused.status, refused.code), (
                f"{user}: expected {refused.status} {refused.code}, got {response.status_code} {body}")
            return None
        assert response.status_code < 300, f"{user}: expected success, got {response.status_code} {body}"
        return response

    # --- Settlements -------------------------------------------------------------------------

    @rule(user=users, projects=st.sampled_from([("MNX",), ("ACME",), ("MNX", "ACME")]),
          period=st.sampled_from(PERIODS))
    def create_settlement(self, user, projects, period):
        def expect():
            if any(not ROLES[user].get(project) for project in projects):
                raise Refused(400, "does_not_exist")  # a project the user is no member of is unknown
            if not self.can(user, P.SETTLEMENTS_WRITE, projects):
                raise Refused(403, "missing_permission")

        response = self.attempt(user, expect, lambda client: client.post("/api/settlements/", {
            "name": "Fuzzed", "period_start": period[0].isoformat(), "period_end": period[1].isoformat(),
            "projects": list(projects)}, format="json"))
        if response is not None:
            body = response.json()
            assert response.status_code == 201 and body["status"] == "draft"
            assert body["sent_at"] is None and body["paid_at"] is None
            self.settlements.append(MSettlement(body["id"], frozenset(projects), period))

    @precondition(lambda self: self.settlements)
    @rule(user=users, index=indices, period=st.sampled_from(PERIODS))
    def edit_period(self, user, index, period):
        settlement = self.pick_settlement(index)

        def expect():
            self.require_settlement(user, settlement)
            self.require_draft(settlement)
            if self.clash(settlement, settlement.tickets, period):
                raise Refused(409, "overlapping_settlement")

        response = self.attempt(user, expect, lambda client: client.patch(
            f"/api/settlements/{settlement.pk}/", {"period_start": period[0].isoformat(),
                                                   "period_end": period[1].isoformat()}, format="json"))
        if response is not None:
            settlement.events += period != settlement.period
            settlement.period = period

    @precondition(lambda self: self.settlements)
    @rule(user=users, index=indices, goal=st.sampled_from(["draft", "sent", "paid"]))
    def transition(self, user, index, goal):
        settlement = self.pick_settlement(index)
        current = settlement.status

        def expect():
            self.require_settlement(user, settlement)
            if goal not in ALLOWED_SETTLEMENT_TRANSITIONS[current]:
                raise Refused(409, "invalid_transition")
            if (current, goal) in REVERSE_TRANSITIONS and not self.can(user, P.PROJECT_ADMIN, settlement.projects):
                raise Refused(403, "project_admin_required")

        response = self.attempt(user, expect, lambda client: client.post(
            f"/api/settlements/{settlement.pk}/transition/", {"status": goal}, format="json"))
        if response is None:
            return
        body = response.json()
        assert body["status"] == goal
        if current == "draft":
            assert body["sent_at"] is not None
            settlement.sent_at = body["sent_at"]
        elif goal == "draft":
            settlement.sent_at = None
        assert body["sent_at"] == settlement.sent_at, "sent_at must survive sent→paid and paid→sent"
        assert (body["paid_at"] is not None) == (goal == "paid")
        settlement.status = goal
        settlement.events += 1

    @precondition(lambda self: sum(s.active for s in self.settlements) > 2)  # keep some to work on
    @rule(user=users, index=indices)
    def delete_settlement(self, user, index):
        settlement = self.pick_settlement(index)

        def expect():
            self.require_settlement(user, settlement, P.SETTLEMENTS_DELETE)
            self.require_draft(settlement)

        if self.attempt(user, expect, lambda client: client.delete(f"/api/settlements/{settlement.pk}/")):
            settlement.active = False
            settlement.events += 1

    # --- Linking -----------------------------------------------------------------------------

    @precondition(lambda self: self.settlements and self.tickets)
    @rule(user=users, index=indices, ticket_index=indices, by_id=st.booleans())
    def link(self, user, index, ticket_index, by_id):
        settlement = self.pick_settlement(index)
        ticket = self.pick(self.tickets.values(), ticket_index)

        def expect():
            self.require_settlement(user, settlement)
            if P.TICKETS_READ not in permissions(user, ticket.project):
                raise Refused(400, "does_not_exist")
            self.require_draft(settlement)
            if ticket.project not in settlement.projects:
                raise Refused(400, "ticket_not_in_settlement_projects")
            if ticket.pk in settlement.tickets:
                raise Refused(409, "already_linked")
            if self.clash(settlement, [ticket.pk], settlement.period):
                raise Refused(409, "overlapping_settlement")

        reference = ticket.pk if by_id else ticket.key
        if self.attempt(user, expect, lambda client: client.post(
                f"/api/settlements/{settlement.pk}/tickets/", {"ticket": reference}, format="json")):
            settlement.tickets.add(ticket.pk)
            settlement.events += 1

    @precondition(lambda self: self.settlements and self.tickets)
    @rule(user=users, index=indices, ticket_index=indices)
    def unlink(self, user, index, ticket_index):
        settlement = self.pick_settlement(index)
        linked = [self.tickets[pk] for pk in sorted(settlement.tickets) if pk in self.tickets]
        ticket = self.pick(linked or self.tickets.values(), ticket_index)

        def expect():
            self.require_settlement(user, settlement)
            if P.TICKETS_READ not in permissions(user, ticket.project):
                raise Refused(404, "not_found")
            self.require_draft(settlement)
            if ticket.pk not in settlement.tickets:
                raise Refused(404, "not_linked")

        if self.attempt(user, expect, lambda client: client.delete(
                f"/api/settlements/{settlement.pk}/tickets/{ticket.key}/")):
            settlement.tickets.discard(ticket.pk)
            settlement.events += 1

    # --- Attachments -------------------------------------------------------------------------

    @precondition(lambda self: self.settlements)
    @rule(user=users, index=indices, matching=st.booleans())
    def upload(self, user, index, matching):
        settlement = self.pick_settlement(index)

        def expect():
            self.require_settlement(user, settlement)
            if not matching:
                raise Refused(400, "content_mismatch")
            if len(settlement.attachments) >= MAX_ATTACHMENTS:
                raise Refused(409, "too_many_attachments")

        name, content = ("notes.txt", b"signed by both") if matching else ("scan.pdf", b"not a pdf at all")
        response = self.attempt(user, expect, lambda client: client.post(
            f"/api/settlements/{settlement.pk}/attachments/",
            {"file": SimpleUploadedFile(name, content), "category": "report"}, format="multipart"))
        if response is not None:
            settlement.attachments[response.json()["id"]] = "draft"
            settlement.events += 1

    @precondition(lambda self: any(s.attachments for s in self.settlements))
    @rule(user=users, index=indices, attachment_index=indices)
    def sign_attachment(self, user, index, attachment_index):
        settlement = self.pick_settlement(index, having=lambda s: s.attachments)
        pk = self.pick(sorted(settlement.attachments), attachment_index)
        state = "draft" if settlement.attachments[pk] == "signed" else "signed"

        if self.attempt(user, lambda: self.require_settlement(user, settlement), lambda client: client.patch(
                f"/api/settlements/{settlement.pk}/attachments/{pk}/", {"state": state}, format="json")):
            settlement.attachments[pk] = state
            settlement.events += 1

    @precondition(lambda self: any(s.attachments for s in self.settlements))
    @rule(user=users, index=indices, attachment_index=indices)
    def delete_attachment(self, user, index, attachment_index):
        settlement = self.pick_settlement(index, having=lambda s: s.attachments)
        pk = self.pick(sorted(settlement.attachments), attachment_index)

        def expect():
            # The route needs settlements:write; the service then asks for settlements:delete.
            self.require_settlement(user, settlement)
            self.require_settlement(user, settlement, P.SETTLEMENTS_DELETE)
            self.require_draft(settlement)

        if self.attempt(user, expect, lambda client: client.delete(
                f"/api/settlements/{settlement.pk}/attachments/{pk}/")):
            del settlement.attachments[pk]
            settlement.events += 1

    # --- Tickets and time entries --------------------------------------------------------------

    @precondition(lambda self: self.tickets)
    @rule(user=users, index=indices, status_only=st.booleans())
    def edit_ticket(self, user, index, status_only):
        ticket = self.pick(self.tickets.values(), index)
        changes = ({"status": "done" if ticket.status != "done" else "review"} if status_only
                   else {"title": ticket.title + "!"})

        def expect():
            self.require_ticket(user, ticket, P.TICKETS_WRITE)
            if not status_only and self.frozen(ticket.pk):
                raise Refused(403, "ticket_frozen")

        if self.attempt(user, expect, lambda client: client.patch(f"/api/tickets/{ticket.key}/", changes,
                                                                 format="json")):
            ticket.status = changes.get("status", ticket.status)
            ticket.title = changes.get("title", ticket.title)

    @precondition(lambda self: len(self.tickets) > 3)  # keep some tickets to link
    @rule(user=users, index=indices)
    def delete_ticket(self, user, index):
        ticket = self.pick(self.tickets.values(), index)

        def expect():
            self.require_ticket(user, ticket, P.TICKETS_DELETE)
            if self.frozen(ticket.pk):
                raise Refused(403, "ticket_frozen")
            if any(s.active and ticket.pk in s.tickets for s in self.settlements):
                raise Refused(409, "ticket_in_settlement")

        if self.attempt(user, expect, lambda client: client.delete(f"/api/tickets/{ticket.key}/")):
            del self.tickets[ticket.pk]
            self.entries = {pk: e for pk, e in self.entries.items() if e.ticket != ticket.pk}
            for settlement in self.settlements:
                settlement.tickets.discard(ticket.pk)  # the links of deleted settlements go with it

    @precondition(lambda self: self.tickets)
    @rule(user=users, index=indices, minutes=st.integers(min_value=1, max_value=480))
    def log_time(self, user, index, minutes):
        ticket = self.pick(self.tickets.values(), index)

        def expect():
            self.require_ticket(user, ticket, P.TICKETS_WRITE, unreadable=(400, "does_not_exist"))
            if self.frozen(ticket.pk):
                raise Refused(403, "ticket_frozen")

        response = self.attempt(user, expect, lambda client: client.post("/api/time-entries/", {
            "ticket": ticket.key, "work_date": "2026-09-20", "minutes": minutes}, format="json"))
        if response is not None:
            self.entries[response.json()["id"]] = MEntry(response.json()["id"], ticket.pk, user, minutes)

    def require_entry(self, user: str, entry: MEntry):
        ticket = self.tickets[entry.ticket]
        self.require_ticket(user, ticket, P.TICKETS_WRITE)
        if entry.user != user and P.PROJECT_ADMIN not in permissions(user, ticket.project):
            raise Refused(403, "not_own_record")
        if self.frozen(ticket.pk):
            raise Refused(403, "ticket_frozen")

    @precondition(lambda self: self.entries)
    @rule(user=users, index=indices, delta=st.integers(min_value=1, max_value=60))
    def edit_entry(self, user, index, delta):
        entry = self.pick(self.entries.values(), index)
        minutes = entry.minutes + delta  # always a change: a no-op PATCH is not a write

        if self.attempt(user, lambda: self.require_entry(user, entry), lambda client: client.patch(
                f"/api/time-entries/{entry.pk}/", {"minutes": minutes}, format="json")):
            entry.minutes = minutes

    @precondition(lambda self: len(self.entries) > 5)
    @rule(user=users, index=indices)
    def delete_entry(self, user, index):
        entry = self.pick(self.entries.values(), index)
        if self.attempt(user, lambda: self.require_entry(user, entry),
                        lambda client: client.delete(f"/api/time-entries/{entry.pk}/")):
            del self.entries[entry.pk]

    # --- Invariants ----------------------------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self):
        tickets = {ticket.pk: ticket for ticket in Ticket.objects.all()}
        assert set(tickets) == set(self.tickets)
        for pk, ticket in tickets.items():
            assert (ticket.title, ticket.status) == (self.tickets[pk].title, self.tickets[pk].status)
        entries = dict(TimeEntry.objects.values_list("pk", "minutes"))
        assert entries == {pk: entry.minutes for pk, entry in self.entries.items()}
        links = set(SettlementTicket.objects.values_list("settlement_id", "ticket_id"))
        assert links == {(s.pk, t) for s in self.settlements for t in s.tickets}
        attachments = set(SettlementAttachment.objects.values_list("settlement_id", "pk", "state"))
        assert attachments == {(s.pk, pk, state) for s in self.settlements for pk, state in s.attachments.items()}
        for settlement in self.settlements:
            assert SettlementEvent.objects.filter(settlement_id=settlement.pk).count() == settlement.events

    @invariant()
    def frozen_iff_linked_to_an_active_sent_or_paid_settlement(self):
        for ticket in Ticket.objects.all():
            linked = SettlementTicket.objects.filter(ticket=ticket, settlement__is_active=True,
                                                     settlement__status__in=["sent", "paid"]).exists()
            assert is_ticket_frozen(ticket) == linked == self.frozen(ticket.pk), ticket.key

    @invariant()
    def timestamps_follow_the_status(self):
        for row in Settlement.objects.all():
            model = next(s for s in self.settlements if s.pk == row.pk)
            assert (row.status, row.is_active, row.period_start, row.period_end) == (
                model.status, model.active, *model.period)
            assert (row.sent_at is not None) == (row.status in ("sent", "paid")), row.status
            assert (row.paid_at is not None) == (row.status == "paid"), row.status
            if row.paid_at is not None:
                assert row.paid_at >= row.sent_at
            if model.sent_at is not None:
                assert row.sent_at == datetime.fromisoformat(model.sent_at)


def test_settlement_workflow_follows_the_rules(settings, tmp_path):
    settings.SETTLEMENT_ATTACHMENT_MAX_FILES = MAX_ATTACHMENTS
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    SettlementWorkflow.steps = 0
    SettlementWorkflow.outcomes = Counter()
    run_state_machine_as_test(SettlementWorkflow, settings=MACHINE_SETTINGS)
    tally("fuzz", SettlementWorkflow.steps)
    outcomes = SettlementWorkflow.outcomes
    print(f"state machine: {SettlementWorkflow.steps} steps;", dict(sorted(outcomes.items())))
    # The run must have got past the refusals to the workflow itself. (Which rarer refusals it met
    # depends on the seed, and the seed on this file's source: `-s` prints the whole table.)
    for expected in [("create_settlement", "ok"), ("link", "ok"), ("transition", "ok"), ("upload", "ok")]:
        assert outcomes[expected], f"the run never reached {expected}"
    codes = {code for _, code in outcomes}
    for code in ("ticket_frozen", "settlement_not_draft", "invalid_transition", "missing_permission", "not_found"):
        assert code in codes, f"the run never met a {code} refusal"
