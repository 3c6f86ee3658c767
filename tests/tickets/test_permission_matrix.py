"""The REST permission matrix for projects, tickets, time entries and expenses: anonymous,
non-member, Viewer, Member, Admin, Owner and superuser × list/retrieve/create/update/delete,
in their own project and in a foreign one. Invisible objects are 404 and never listed."""

from dataclasses import dataclass

import pytest

from tests.factories import (
    ExpenseFactory,
    ProjectFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
    grant,
    matrix_projects,
)
from tests.permission_matrix import DENIED, HIDDEN, OK, UNAUTHENTICATED, cases, expected
from tickets.models import Expense, Project, Ticket, TimeEntry

pytestmark = pytest.mark.django_db


@dataclass
class World:
    actor: object
    project: Project          # the project the case is about (own or foreign)
    ticket: Ticket            # a ticket in that project
    owner: object             # an Owner of that project, who owns the objects others act on


def build_world(role: str, *, own: bool) -> World:
    actor, home, away, owner = matrix_projects(role)
    project = home if own else away
    return World(actor=actor, project=project, ticket=TicketFactory(project=project, title="Target"), owner=owner)


class Resource:
    base: str

    def target(self, world: World):
        raise NotImplementedError

    def detail(self, obj) -> str:
        return f"{self.base}{obj.pk}/"

    def ident(self, obj):
        return obj.pk

    def list_ids(self, payload) -> set:
        return {row["id"] for row in payload["results"]}

    def row_count(self) -> int:
        raise NotImplementedError


class ProjectResource(Resource):
    base = "/api/projects/"

    def target(self, world):
        return world.project

    def detail(self, obj):
        return f"{self.base}{obj.key}/"

    def create_payload(self, world):
        return {"key": "NEWP", "name": "New project"}

    def update_payload(self, world):
        return {"name": "Renamed"}

    def prepare_delete(self, world):
        world.ticket.delete()  # only empty projects can be deleted

    def row_count(self):
        return Project.objects.count()


class TicketResource(Resource):
    base = "/api/tickets/"

    def target(self, world):
        return world.ticket

    def detail(self, obj):
        return f"{self.base}{obj.key}/"

    def create_payload(self, world):
        return {"project": world.project.key, "title": "Created"}

    def update_payload(self, world):
        return {"title": "Renamed"}

    def row_count(self):
        return Ticket.objects.count()


class TimeEntryResource(Resource):
    base = "/api/time-entries/"
    factory = TimeEntryFactory
    model = TimeEntry

    def target(self, world):
        # A member acts on their own entry; other people's entries need project admin rights.
        return self.factory(ticket=world.ticket, user=world.actor or world.owner)

    def create_payload(self, world):
        return {"ticket": world.ticket.key, "work_date": "2026-10-01", "minutes": 30}

    def update_payload(self, world):
        return {"minutes": 45}

    def row_count(self):
        return self.model.objects.count()


class ExpenseResource(TimeEntryResource):
    base = "/api/expenses/"
    factory = ExpenseFactory
    model = Expense

    def create_payload(self, world):
        return {"ticket": world.ticket.key, "date": "2026-10-01", "description": "Hotel", "amount": "120.50",
                "currency": "NOK"}

    def update_payload(self, world):
        return {"amount": "99.90"}


RESOURCES = {"project": ProjectResource(), "ticket": TicketResource(), "time_entry": TimeEntryResource(),
             "expense": ExpenseResource()}
STATUS = {
    "retrieve": {OK: 200, HIDDEN: 404, UNAUTHENTICATED: 401},
    "create": {OK: 201, DENIED: 403, UNAUTHENTICATED: 401},
    "update": {OK: 200, DENIED: 403, HIDDEN: 404, UNAUTHENTICATED: 401},
    "delete": {OK: 204, DENIED: 403, HIDDEN: 404, UNAUTHENTICATED: 401},
}


def _case_id(case):
    resource, action, role, own = case
    return f"{resource}-{action}-{role}-{'own' if own else 'foreign'}"


@pytest.mark.parametrize("case", cases(), ids=_case_id)
def test_permission_matrix(case, client_for):
    resource_name, action, role, own = case
    outcome = expected(resource_name, action, role, own=own)
    resource = RESOURCES[resource_name]
    world = build_world(role, own=own)
    client = client_for(world.actor)
    target = resource.target(world)

    if action == "list":
        response = client.get(resource.base, {"page_size": 500})
        if outcome == UNAUTHENTICATED:
            assert response.status_code == 401
            return
        assert response.status_code == 200
        assert (resource.ident(target) in resource.list_ids(response.json())) is (outcome == OK)
        return

    before = resource.row_count()
    if action == "retrieve":
        response = client.get(resource.detail(target))
    elif action == "create":
        response = client.post(resource.base, resource.create_payload(world), format="json")
    elif action == "update":
        response = client.patch(resource.detail(target), resource.update_payload(world), format="json")
    else:
        getattr(resource, "prepare_delete", lambda w: None)(world)
        before = resource.row_count()
        response = client.delete(resource.detail(target))

    if action == "create" and outcome == HIDDEN:
        # A reference to an invisible project or ticket reads exactly like a missing one.
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "does_not_exist"
    else:
        assert response.status_code == STATUS[action][outcome], response.content
    if outcome != OK:
        if response.status_code != 401:
            assert "code" in response.json()
        assert resource.row_count() == before, "a refused request wrote something"


def test_lists_contain_only_readable_objects(client_for):
    viewer = UserFactory(username="v")
    mine, other = ProjectFactory(key="MINE"), ProjectFactory(key="OTHER")
    grant(viewer, mine, "viewer")
    visible = TicketFactory(project=mine)
    TicketFactory(project=other)
    TimeEntryFactory(ticket=visible)
    TimeEntryFactory(ticket=TicketFactory(project=other))
    client = client_for(viewer)
    assert [p["key"] for p in client.get("/api/projects/").json()["results"]] == ["MINE"]
    assert [t["key"] for t in client.get("/api/tickets/").json()["results"]] == [visible.key]
    assert [e["ticket"] for e in client.get("/api/time-entries/").json()["results"]] == [visible.key]
    assert client.get("/api/tickets/", {"project": "OTHER"}).json()["count"] == 0


def test_member_cannot_change_someone_elses_time_entry_but_admin_can(client_for):
    project = ProjectFactory(key="TEAM")
    member, colleague, admin = UserFactory(username="m"), UserFactory(username="c"), UserFactory(username="a")
    grant(member, project, "member")
    grant(colleague, project, "member")
    grant(admin, project, "admin")
    entry = TimeEntryFactory(ticket=TicketFactory(project=project), user=colleague)

    response = client_for(member).patch(f"/api/time-entries/{entry.pk}/", {"minutes": 5}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "not_own_record"
    response = client_for(admin).patch(f"/api/time-entries/{entry.pk}/", {"minutes": 5}, format="json")
    assert response.status_code == 200 and response.json()["minutes"] == 5


def test_member_may_not_log_time_for_someone_else(client_for):
    project = ProjectFactory(key="TEAM")
    member, colleague = UserFactory(username="m"), UserFactory(username="c")
    grant(member, project, "member")
    grant(colleague, project, "member")
    ticket = TicketFactory(project=project)
    payload = {"ticket": ticket.key, "work_date": "2026-10-01", "minutes": 30, "user": "c"}
    response = client_for(member).post("/api/time-entries/", payload, format="json")
    assert response.status_code == 403
    assert TimeEntry.objects.count() == 0


def test_user_with_settlement_rights_only_sees_the_project_but_not_its_tickets(client_for):
    from rbac import services as rbac_services

    project = ProjectFactory(key="FIN")
    boss = UserFactory(username="boss", is_superuser=True)
    rbac_services.role_create(actor=boss, project=project, slug="finance", name="Finance",
                              permissions=["settlements:read"])
    clerk = UserFactory(username="clerk")
    grant(clerk, project, "finance")
    ticket = TicketFactory(project=project)
    client = client_for(clerk)
    assert client.get("/api/projects/FIN/").status_code == 200
    assert client.get(f"/api/tickets/{ticket.key}/").status_code == 404
    assert client.get("/api/tickets/").json()["count"] == 0
