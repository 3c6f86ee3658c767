"""Roles and memberships: built-in roles, guardian rows kept in step, custom roles, last Owner."""

import pytest

from rbac.choices import BUILTIN_ROLES, ProjectPermission
from rbac.querysets import project_permissions
from tests.factories import ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", sorted(BUILTIN_ROLES))
def test_builtin_roles_grant_exactly_their_permissions_through_guardian(role):
    user, project = UserFactory(), ProjectFactory()
    grant(user, project, role)
    assert project_permissions(user, project.pk) == frozenset(BUILTIN_ROLES[role][1])
    # guardian's own API agrees, since the rows are guardian's.
    for permission in ProjectPermission.values:
        expected = permission in BUILTIN_ROLES[role][1]
        assert user.has_perm(f"tickets.{permission.replace(':', '_')}", project) is expected


def test_role_change_and_removal_keep_guardian_rows_in_step(client_for):
    owner, user, project = UserFactory(username="o"), UserFactory(username="u"), ProjectFactory(key="MNX")
    grant(owner, project, "owner")
    client = client_for(owner)
    assert client.post("/api/projects/MNX/members/", {"user": "u", "role": "viewer"}, format="json").status_code == 201
    assert project_permissions(user, project.pk) == {"tickets:read"}
    response = client.patch("/api/projects/MNX/members/u/", {"role": "member"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "member"
    assert project_permissions(user, project.pk) == {"tickets:read", "tickets:write"}
    assert client.delete("/api/projects/MNX/members/u/").status_code == 204
    assert project_permissions(user, project.pk) == frozenset()


def test_members_list_is_readable_by_members_but_changed_only_by_admins(client_for):
    owner, viewer, project = UserFactory(username="o"), UserFactory(username="v"), ProjectFactory(key="MNX")
    grant(owner, project, "owner")
    grant(viewer, project, "viewer")
    client = client_for(viewer)
    listed = client.get("/api/projects/MNX/members/").json()["results"]
    assert {(m["user"], m["role"]) for m in listed} == {("o", "owner"), ("v", "viewer")}
    response = client.patch("/api/projects/MNX/members/v/", {"role": "owner"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "missing_permission"
    assert client_for(UserFactory(username="x")).get("/api/projects/MNX/members/").status_code == 404


def test_last_owner_cannot_leave_or_be_demoted(client_for):
    owner, project = UserFactory(username="o"), ProjectFactory(key="MNX")
    grant(owner, project, "owner")
    client = client_for(owner)
    response = client.delete("/api/projects/MNX/members/o/")
    assert response.status_code == 409 and response.json()["code"] == "last_owner"
    response = client.patch("/api/projects/MNX/members/o/", {"role": "admin"}, format="json")
    assert response.status_code == 409
    assert project_permissions(owner, project.pk) == frozenset(ProjectPermission.values)


def test_custom_roles(client_for):
    owner, clerk, project = UserFactory(username="o"), UserFactory(username="c"), ProjectFactory(key="MNX")
    grant(owner, project, "owner")
    client = client_for(owner)
    response = client.post("/api/projects/MNX/roles/", {"slug": "finance", "name": "Finance",
                                                        "permissions": ["tickets:read", "settlements:read"]},
                           format="json")
    assert response.status_code == 201, response.content
    client.post("/api/projects/MNX/members/", {"user": "c", "role": "finance"}, format="json")
    assert project_permissions(clerk, project.pk) == {"tickets:read", "settlements:read"}
    response = client.patch("/api/projects/MNX/roles/finance/", {"permissions": ["settlements:read"]}, format="json")
    assert response.status_code == 200
    assert project_permissions(clerk, project.pk) == {"settlements:read"}
    response = client.delete("/api/projects/MNX/roles/finance/")
    assert response.status_code == 409 and response.json()["code"] == "role_in_use"
    response = client.patch("/api/projects/MNX/roles/owner/", {"name": "Boss"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "builtin_role"
    response = client.post("/api/projects/MNX/roles/", {"slug": "bad", "name": "Bad", "permissions": ["root:all"]},
                           format="json")
    assert response.status_code == 400


def test_project_creator_becomes_owner_and_needs_the_global_right(client_for):
    from rbac import services

    root, user = UserFactory(username="root", is_superuser=True), UserFactory(username="u")
    response = client_for(user).post("/api/projects/", {"key": "NEW", "name": "New"}, format="json")
    assert response.status_code == 403
    services.user_set_global_permissions(actor=root, user=user, permissions=["tickets.add_project"])
    user = type(user).objects.get(pk=user.pk)  # fresh permission cache
    response = client_for(user).post("/api/projects/", {"key": "NEW", "name": "New"}, format="json")
    assert response.status_code == 201
    assert client_for(user).get("/api/projects/NEW/members/").json()["results"][0]["role"] == "owner"


def test_users_endpoint_is_for_superusers_and_bootstraps_an_installation(client_for, api_client):
    root, user = UserFactory(username="root", is_superuser=True), UserFactory(username="u")
    response = client_for(user).get("/api/users/")
    assert response.status_code == 403 and response.json()["code"] == "superuser_required"
    assert client_for(user).get("/api/users/me/").json()["username"] == "u"
    client = client_for(root)
    response = client.post("/api/users/", {"username": "clerk", "password": "s3cret-pass-word",
                                           "global_permissions": ["billing.view", "billing.manage"]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["global_permissions"] == ["billing.view", "billing.manage"]
    assert "password" not in response.json()
    assert api_client.login(username="clerk", password="s3cret-pass-word")
    response = client.post("/api/users/", {"username": "x", "global_permissions": ["auth.delete_user"]},
                           format="json")
    assert response.status_code == 400
    clerk_id = type(user).objects.get(username="clerk").pk
    issued = client.post(f"/api/users/{clerk_id}/tokens/", {"name": "service"}, format="json")
    assert issued.status_code == 201
    me = api_client.get("/api/users/me/", HTTP_AUTHORIZATION=f"Bearer {issued.json()['token']}")
    assert me.json()["username"] == "clerk"
    assert client_for(user).post(f"/api/users/{clerk_id}/tokens/", {"name": "x"}, format="json").status_code == 403
    assert client.delete(f"/api/users/{clerk_id}/").status_code == 204
    assert not type(user).objects.get(pk=clerk_id).is_active
