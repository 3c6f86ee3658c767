"""The Django admin is restricted by the same per-project permissions as the API (SPEC §2).

Staff users log in with django.test.Client and go through the admin's routing; what they may
see comes from `visible_to`, what they may change from their role in the object's project, and
every write goes through the services.
"""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client

from rbac.choices import BUILTIN_ROLES
from rbac.choices import ProjectPermission as P
from rbac.models import Membership, Role
from rbac.querysets import MISSING_PERMISSION_MESSAGE, project_permissions
from tests.factories import ExpenseFactory, ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tests.helpers import admin_form_data
from tickets.guards import EditAction, register_edit_guard, unregister_edit_guard
from tickets.models import Project, Ticket

pytestmark = pytest.mark.django_db

BULK_DELETE_ACTION = "delete_selected_through_services"
ALL_PERMISSIONS = frozenset(P.values)


@pytest.fixture
def project_a():
    return ProjectFactory(key="ALPHA", name="Alpha project")


@pytest.fixture
def project_b():
    return ProjectFactory(key="BRAVO", name="Bravo project")


@pytest.fixture
def ticket_a(project_a):
    return TicketFactory(project=project_a, title="Alpha visible ticket")


@pytest.fixture
def ticket_b(project_b):
    return TicketFactory(project=project_b, title="Bravo secret ticket")


def staff_with(project, role: str | None, username: str):
    user = UserFactory(username=username, is_staff=True)
    if role is not None:
        grant(user, project, role)
    return user


@pytest.fixture
def member(project_a):
    return staff_with(project_a, "member", "member")


@pytest.fixture
def viewer(project_a):
    return staff_with(project_a, "viewer", "viewer")


@pytest.fixture
def project_admin(project_a):
    return staff_with(project_a, "admin", "padmin")


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- Who gets into the admin at all -----------------------------------------------------------------

@pytest.mark.parametrize("url", ["/admin/", "/admin/tickets/ticket/", "/admin/rbac/membership/"])
def test_non_staff_users_are_sent_to_the_admin_login(project_a, ticket_a, url):
    user = UserFactory(username="plain")
    grant(user, project_a, "owner")
    for client in (login(user), Client()):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


# --- Visibility: lists and objects of other projects -------------------------------------------------

def test_changelist_shows_only_tickets_of_readable_projects(member, ticket_a, ticket_b):
    response = login(member).get("/admin/tickets/ticket/")
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [ticket_a]
    content = response.content.decode()
    assert ticket_a.title in content and ticket_a.key in content
    assert ticket_b.title not in content and ticket_b.key not in content


@pytest.mark.parametrize(("url", "factory"), [("/admin/tickets/timeentry/", TimeEntryFactory),
                                              ("/admin/tickets/expense/", ExpenseFactory)])
def test_record_changelists_show_only_readable_projects(member, ticket_a, ticket_b, url, factory):
    visible = factory(ticket=ticket_a)
    factory(ticket=ticket_b)
    response = login(member).get(url)
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [visible]


def test_ticket_of_another_project_is_not_found_in_the_admin(member, ticket_b):
    client = login(member)
    for url in (f"/admin/tickets/ticket/{ticket_b.pk}/change/", f"/admin/tickets/ticket/{ticket_b.pk}/delete/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == "/admin/"
        assert any("doesn’t exist" in message for message in messages_of(response))
        followed = client.get(response["Location"])
        assert ticket_b.title not in followed.content.decode()

    response = client.post(f"/admin/tickets/ticket/{ticket_b.pk}/change/", {"title": "Hijacked"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    response = client.post(f"/admin/tickets/ticket/{ticket_b.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    ticket_b.refresh_from_db()
    assert ticket_b.title == "Bravo secret ticket"


# Filters and dropdowns are restricted too (DESIGN: "filter choices are restricted"): Django's
# defaults (RelatedFieldListFilter, ModelChoiceField over all rows) would name every project.
@pytest.mark.parametrize("url", ["/admin/tickets/ticket/", "/admin/tickets/ticket/add/", "/admin/tickets/timeentry/",
                                 "/admin/tickets/timeentry/add/", "/admin/tickets/expense/", "/admin/rbac/membership/",
                                 "/admin/rbac/membership/add/", "/admin/rbac/role/", "/admin/rbac/role/add/"])
def test_admin_pages_do_not_name_projects_the_user_cannot_see(member, ticket_a, ticket_b, superuser, url):
    from rbac import services as rbac_services

    rbac_services.role_create(actor=superuser, project=ticket_b.project, slug="auditor", name="Bravo auditor",
                              permissions=[P.TICKETS_READ])
    response = login(member).get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert ticket_b.project.key not in content
    assert "Bravo auditor" not in content


# --- Read-only for Viewers ---------------------------------------------------------------------------

def test_viewer_sees_the_ticket_read_only(viewer, ticket_a):
    client = login(viewer)
    url = f"/admin/tickets/ticket/{ticket_a.pk}/change/"
    response = client.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert ticket_a.title in content
    assert 'name="_save"' not in content
    assert 'name="title"' not in content

    response = client.post(url, {"title": "Changed by viewer", "priority": ticket_a.priority,
                                 "status": ticket_a.status})
    assert response.status_code == 403
    ticket_a.refresh_from_db()
    assert ticket_a.title == "Alpha visible ticket"


def test_project_readers_see_the_tickets_records_inline(viewer, ticket_a):
    from tests.factories import ExpenseFactory, TimeEntryFactory

    TimeEntryFactory(ticket=ticket_a, minutes=77, description="Inline entry")
    ExpenseFactory(ticket=ticket_a, description="Inline expense")
    content = login(viewer).get(f"/admin/tickets/ticket/{ticket_a.pk}/change/").content.decode()
    assert "Inline entry" in content and "Inline expense" in content


def test_member_can_change_the_ticket(member, ticket_a):
    client = login(member)
    url = f"/admin/tickets/ticket/{ticket_a.pk}/change/"
    page = client.get(url)
    assert 'name="_save"' in page.content.decode()
    response = client.post(url, {**admin_form_data(page), "title": "Changed by member"})
    assert response.status_code == 302
    ticket_a.refresh_from_db()
    assert ticket_a.title == "Changed by member"


# --- Deleting tickets needs tickets:delete -----------------------------------------------------------

def test_member_cannot_delete_a_ticket(member, ticket_a):
    client = login(member)
    url = f"/admin/tickets/ticket/{ticket_a.pk}/delete/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Ticket.objects.filter(pk=ticket_a.pk).exists()


def test_member_bulk_delete_is_refused_per_ticket(member, ticket_a):
    response = login(member).post("/admin/tickets/ticket/", {
        "action": BULK_DELETE_ACTION, "_selected_action": [ticket_a.pk], "index": 0,
    })
    assert response.status_code == 302
    assert Ticket.objects.filter(pk=ticket_a.pk).exists()
    expected = MISSING_PERMISSION_MESSAGE.format(permission=P.TICKETS_DELETE, project=ticket_a.project.key)
    assert f"{ticket_a}: {expected}" in messages_of(response)


def test_project_admin_can_delete_a_ticket(project_admin, ticket_a):
    TimeEntryFactory(ticket=ticket_a)
    client = login(project_admin)
    url = f"/admin/tickets/ticket/{ticket_a.pk}/delete/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Ticket.objects.filter(pk=ticket_a.pk).exists()


# --- Projects ---------------------------------------------------------------------------------------

def test_staff_without_add_project_permission_cannot_add_projects(member, project_admin):
    for user in (member, project_admin):
        client = login(user)
        assert client.get("/admin/tickets/project/add/").status_code == 403
        assert client.post("/admin/tickets/project/add/", {"key": "NEWP", "name": "New"}).status_code == 403
    assert not Project.objects.filter(key="NEWP").exists()


def test_staff_with_add_project_permission_adds_a_project_and_owns_it():
    creator = UserFactory(username="creator", is_staff=True)
    creator.user_permissions.add(Permission.objects.get(content_type__app_label="tickets", codename="add_project"))
    client = login(creator)
    assert client.get("/admin/tickets/project/add/").status_code == 200
    response = client.post("/admin/tickets/project/add/", {"key": "NEWP", "name": "New project", "is_active": "on"})
    assert response.status_code == 302
    project = Project.objects.get(key="NEWP")
    assert project_permissions(creator, project.pk) == ALL_PERMISSIONS


def test_project_admin_changes_the_project_name(project_admin, project_a):
    client = login(project_admin)
    url = f"/admin/tickets/project/{project_a.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    response = client.post(url, {**admin_form_data(page), "name": "Renamed by admin"})
    assert response.status_code == 302
    project_a.refresh_from_db()
    assert (project_a.key, project_a.name) == ("ALPHA", "Renamed by admin")


def test_member_cannot_change_the_project(member, project_a):
    client = login(member)
    url = f"/admin/tickets/project/{project_a.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = client.post(url, {"name": "Renamed by member", "is_active": "on"})
    assert response.status_code == 403
    project_a.refresh_from_db()
    assert project_a.name == "Alpha project"


# --- Memberships ------------------------------------------------------------------------------------

def _builtin(slug: str) -> Role:
    return Role.objects.get(slug=slug, project__isnull=True)


def test_project_admin_changes_a_role_and_guardian_rows_follow(project_admin, member, project_a):
    membership = Membership.objects.get(user=member, project=project_a)
    assert project_permissions(member, project_a.pk) == frozenset(BUILTIN_ROLES["member"][1])
    client = login(project_admin)
    url = f"/admin/rbac/membership/{membership.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200

    response = client.post(url, {**admin_form_data(page), "role": _builtin("viewer").pk})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == _builtin("viewer")
    assert project_permissions(member, project_a.pk) == frozenset({P.TICKETS_READ})

    response = client.post(url, {**admin_form_data(page), "role": _builtin("admin").pk})
    assert response.status_code == 302
    assert project_permissions(member, project_a.pk) == frozenset(BUILTIN_ROLES["admin"][1])


def test_member_cannot_change_roles(member, viewer, project_a):
    membership = Membership.objects.get(user=viewer, project=project_a)
    response = login(member).post(f"/admin/rbac/membership/{membership.pk}/change/",
                                  {"role": _builtin("owner").pk})
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == _builtin("viewer")
    assert project_permissions(viewer, project_a.pk) == frozenset({P.TICKETS_READ})


# --- Bulk delete goes through the services -----------------------------------------------------------

def test_builtin_delete_selected_is_not_offered(superuser, ticket_a):
    response = login(superuser).get("/admin/tickets/ticket/")
    actions = [name for name, _label in response.context["action_form"].fields["action"].choices]
    assert BULK_DELETE_ACTION in actions
    assert "delete_selected" not in actions


def test_posting_delete_selected_deletes_nothing(superuser, ticket_a):
    response = login(superuser).post("/admin/tickets/ticket/", {
        "action": "delete_selected", "_selected_action": [ticket_a.pk], "index": 0, "post": "yes",
    })
    assert response.status_code in (200, 302)
    assert Ticket.objects.filter(pk=ticket_a.pk).exists()


def test_superuser_bulk_deletes_two_tickets(superuser, project_a):
    first, second = TicketFactory(project=project_a), TicketFactory(project=project_a)
    keep = TicketFactory(project=project_a)
    response = login(superuser).post("/admin/tickets/ticket/", {
        "action": BULK_DELETE_ACTION, "_selected_action": [first.pk, second.pk], "index": 0,
    })
    assert response.status_code == 302
    assert list(Ticket.objects.values_list("pk", flat=True)) == [keep.pk]
    assert "Deleted 2 object(s)." in messages_of(response)


def test_bulk_delete_asks_the_edit_guards_for_each_ticket(superuser, project_a):
    free, frozen = TicketFactory(project=project_a), TicketFactory(project=project_a)
    asked = []

    def guard(attempt):
        asked.append((attempt.action, attempt.ticket.pk))
        if attempt.ticket.pk == frozen.pk:
            from core.errors import EditBlocked

            raise EditBlocked("Frozen by test guard", code="test_blocked")

    register_edit_guard("test-guard", guard)
    try:
        response = login(superuser).post("/admin/tickets/ticket/", {
            "action": BULK_DELETE_ACTION, "_selected_action": [free.pk, frozen.pk], "index": 0,
        })
    finally:
        unregister_edit_guard("test-guard")
    assert response.status_code == 302
    assert sorted(asked) == sorted([(EditAction.TICKET_DELETE, free.pk), (EditAction.TICKET_DELETE, frozen.pk)])
    assert list(Ticket.objects.values_list("pk", flat=True)) == [frozen.pk]
    assert f"{frozen}: Frozen by test guard" in messages_of(response)
