"""Regressions for the foundation review: no privilege escalation by project admins, NUL bytes,
numeric and dotted usernames, self-lockout, token revocation on deactivation, N+1 on users."""

import pytest

from rbac import services
from rbac.models import ApiToken
from rbac.querysets import project_permissions
from tests.factories import ProjectFactory, TicketFactory, UserFactory, grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(client_for):
    project = ProjectFactory(key="MNX")
    owner, admin, member = UserFactory(username="o"), UserFactory(username="a"), UserFactory(username="m")
    grant(owner, project, "owner")
    grant(admin, project, "admin")
    grant(member, project, "member")
    return project, owner, admin, member


def test_project_admin_cannot_escalate(client_for, team):
    project, owner, admin, _member = team
    client = client_for(admin)
    for response in (
        client.patch("/api/projects/MNX/members/a/", {"role": "owner"}, format="json"),
        client.post("/api/projects/MNX/members/", {"user": "m", "role": "owner"}, format="json"),
        client.delete("/api/projects/MNX/members/o/"),
        client.patch("/api/projects/MNX/members/o/", {"role": "viewer"}, format="json"),
        client.post("/api/projects/MNX/roles/", {"slug": "god", "name": "God",
                                                 "permissions": ["settlements:delete"]}, format="json"),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "cannot_grant"
    assert "settlements:delete" not in project_permissions(admin, project.pk)
    assert "settlements:delete" in project_permissions(owner, project.pk)
    # Within their own rights an Admin manages members as before.
    assert client.patch("/api/projects/MNX/members/m/", {"role": "admin"}, format="json").status_code == 200
    assert client_for(owner).patch("/api/projects/MNX/members/a/", {"role": "owner"},
                                   format="json").status_code == 200


def test_adding_an_existing_member_is_200_and_non_admins_learn_nothing(client_for, team):
    _project, owner, _admin, member = team
    response = client_for(owner).post("/api/projects/MNX/members/", {"user": "m", "role": "viewer"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "viewer"
    for user in ("ghost", "o"):
        response = client_for(member).post("/api/projects/MNX/members/", {"user": user, "role": "viewer"},
                                           format="json")
        assert response.status_code == 403


def test_numeric_and_dotted_usernames(client_for, team):
    project, owner, _, _ = team
    digits, dotted = UserFactory(username="3"), UserFactory(username="john.doe")
    client = client_for(owner)
    assert client.post("/api/projects/MNX/members/", {"user": "3", "role": "viewer"}, format="json").status_code == 201
    assert project_permissions(digits, project.pk) == {"tickets:read"}
    assert client.post("/api/projects/MNX/members/", {"user": dotted.pk, "role": "viewer"},
                       format="json").status_code == 201
    assert client.patch("/api/projects/MNX/members/john.doe/", {"role": "member"}, format="json").status_code == 200
    assert client.delete("/api/projects/MNX/members/john.doe/").status_code == 204


@pytest.mark.parametrize("path", ["/api/projects/MN%00/", "/api/projects/MNX/members/a%00b/",
                                  "/api/projects/MNX/roles/a%00/", "/api/tickets/?q=a%00"])
def test_nul_bytes_in_urls_are_400(client_for, team, path):
    response = client_for(team[1]).get(path)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


@pytest.mark.parametrize("payload", [{"project": "MN\x00X", "title": "t"},
                                     {"project": "MNX", "title": "t", "assignee": "o\x00"}])
def test_nul_bytes_in_references_are_400(client_for, team, payload):
    response = client_for(team[1]).post("/api/tickets/", payload, format="json")
    assert response.status_code == 400


def test_superusers_cannot_lock_themselves_out_and_deactivation_revokes_tokens(client_for, api_client):
    root, user = UserFactory(username="root", is_superuser=True), UserFactory(username="u")
    client = client_for(root)
    for payload in ({"is_active": False}, {"is_superuser": False}):
        response = client.patch(f"/api/users/{root.pk}/", payload, format="json")
        assert response.status_code == 409 and response.json()["code"] == "self_lockout"
    _, plain = services.api_token_create(actor=user, user=user, name="t")
    assert client.patch(f"/api/users/{user.pk}/", {"is_active": False}, format="json").status_code == 200
    assert client.patch(f"/api/users/{user.pk}/", {"is_active": True}, format="json").status_code == 200
    assert api_client.get("/api/users/me/", HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 401
    assert ApiToken.objects.get(user=user).revoked_at is not None


def test_weak_passwords_are_refused(client_for):
    root = UserFactory(username="root", is_superuser=True)
    response = client_for(root).post("/api/users/", {"username": "x", "password": "password"}, format="json")
    assert response.status_code == 400 and response.json()["errors"]["password"][0]["code"] == "weak_password"


def test_member_without_ticket_rights_gets_403_not_404_when_creating_tickets(client_for):
    project = ProjectFactory(key="FIN")
    root = UserFactory(username="root", is_superuser=True)
    services.role_create(actor=root, project=project, slug="finance", name="Finance", permissions=["settlements:read"])
    clerk = UserFactory(username="clerk")
    grant(clerk, project, "finance")
    response = client_for(clerk).post("/api/tickets/", {"project": "FIN", "title": "x"}, format="json")
    assert response.status_code == 403


def test_users_list_has_constant_queries(client_for, django_assert_max_num_queries):
    root = UserFactory(username="root", is_superuser=True)
    for n in range(20):
        user = UserFactory(username=f"user{n}")
        services.user_set_global_permissions(actor=root, user=user, permissions=["billing.view"])
    with django_assert_max_num_queries(5):
        rows = client_for(root).get("/api/users/", {"page_size": 50}).json()["results"]
    assert len(rows) == 21 and rows[-1]["global_permissions"] == ["billing.view"]


@pytest.mark.postgres
def test_nul_bytes_never_reach_postgres(client_for, team):
    client = client_for(team[1])
    ticket = TicketFactory(project=team[0])
    for payload in ({"ticket": ticket.key, "work_date": "2026-10-01", "minutes": 5, "user": "o\x00"},
                    {"ticket": "MNX\x00-1", "work_date": "2026-10-01", "minutes": 5}):
        assert client.post("/api/time-entries/", payload, format="json").status_code == 400
    assert client.post("/api/projects/MNX/members/", {"user": "a\x00", "role": "viewer"},
                       format="json").status_code == 400
